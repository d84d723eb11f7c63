//! How a registration's thread sleeps until a signal, or its guard, wakes it: on Unix a socket
//! pair that signal-hook's pipe actions write to (the thread blocks reading it), on Windows a
//! park with a timeout (signal-hook offers Windows no safe action that could wake a thread).

#[cfg(unix)]
pub(super) use self::unix::Pipe;
#[cfg(windows)]
pub(super) use self::windows::Pipe;

#[cfg(unix)]
mod unix {
    use std::ffi::c_int;
    use std::io::{self, Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::thread::Thread;

    use signal_hook::SigId;

    /// A socket pair: signal-hook's actions and the guard write, the thread reads.
    ///
    /// The guard keeps the read end open until it is dropped, after unregistering: writing to a
    /// socket whose reader is gone raises `SIGPIPE`, which would end the process.
    pub(crate) struct Pipe {
        read: Arc<UnixStream>,
        write: UnixStream,
    }

    /// The thread's end of the pipe.
    pub(crate) struct Waiter(Arc<UnixStream>);

    impl Pipe {
        pub(crate) fn new() -> io::Result<Pipe> {
            let (read, write) = UnixStream::pair()?;
            // The guard's wake-up must not block when the socket is full; a full socket
            // already wakes the reader. (signal-hook's own writes never block either: it sends
            // with `MSG_DONTWAIT`.)
            write.set_nonblocking(true)?;
            Ok(Pipe {
                read: Arc::new(read),
                write,
            })
        }

        /// Adds the action that writes one byte for `signal`. signal-hook owns the duplicate
        /// and closes it when the action is unregistered.
        pub(crate) fn register(&self, signal: c_int) -> io::Result<Option<SigId>> {
            signal_hook::low_level::pipe::register(signal, self.write.try_clone()?).map(Some)
        }

        pub(crate) fn waiter(&self) -> Waiter {
            Waiter(Arc::clone(&self.read))
        }

        pub(crate) fn wake(&self, _thread: &Thread) {
            // An error means the socket is full (the reader wakes anyway) or broken (the
            // reader's read fails and it ends): nothing to do either way.
            let _ = (&self.write).write(&[0]);
        }
    }

    impl Waiter {
        /// Blocks until at least one byte arrives and takes what is there; `false` when the
        /// socket is closed or broken, so the thread should end.
        pub(crate) fn wait(&mut self) -> bool {
            let mut bytes = [0; 64];
            loop {
                match (&*self.0).read(&mut bytes) {
                    Ok(0) => return false,
                    Ok(_) => return true,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
            }
        }
    }
}

#[cfg(windows)]
mod windows {
    use std::ffi::c_int;
    use std::io;
    use std::thread::{self, Thread};
    use std::time::Duration;

    use signal_hook::SigId;

    /// How often the thread looks at the flags: signal-hook's only safe actions on Windows set
    /// a flag, nothing that could wake a sleeping thread.
    const POLL: Duration = Duration::from_millis(50);

    /// Nothing to own: the flags are all there is.
    pub(crate) struct Pipe;

    /// The thread's side: a park that the guard's `unpark` cuts short.
    pub(crate) struct Waiter;

    impl Pipe {
        pub(crate) fn new() -> io::Result<Pipe> {
            Ok(Pipe)
        }

        pub(crate) fn register(&self, _signal: c_int) -> io::Result<Option<SigId>> {
            Ok(None)
        }

        pub(crate) fn waiter(&self) -> Waiter {
            Waiter
        }

        pub(crate) fn wake(&self, thread: &Thread) {
            thread.unpark();
        }
    }

    impl Waiter {
        pub(crate) fn wait(&mut self) -> bool {
            thread::park_timeout(POLL);
            true
        }
    }
}
