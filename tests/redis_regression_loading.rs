//! Regression tests. The defect they caught (found in review, now fixed; the names and this text
//! say what went wrong): a Redis with persistence (the only kind whose records survive a restart) answers
//! `-LOADING` for a while after it restarts. The command thread counts that as "Redis refused"
//! and gives the batch up after three answers (~150 ms): the cancels queued during the outage
//! are abandoned, and the reconnect's record check (`CheckAll`) is dropped silently, so a job
//! registered during the outage never learns of a cancel whose record is right there.

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use cancel_token::redis::{ConnectionState, RedisRegistry};

use common::{within, LIMIT};
use support_redis::{free_port, record_key, redis_server_binary};

const SOON: Duration = Duration::from_secs(10);

struct Server {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(port: u16, dir: &std::path::Path) -> Server {
        let child = Command::new(redis_server_binary())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // Loading takes 300 µs a key: 5,000 keys load in about 1.5 s.
            .args(["--key-load-delay", "300"])
            // Answer clients (with -LOADING) while loading, as a big dataset does.
            .args(["--loading-process-events-interval-bytes", "1024"])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let server = Server {
            port,
            dir: dir.to_owned(),
            child: Some(child),
        };
        let deadline = Instant::now() + SOON;
        while server.raw().is_none() {
            assert!(Instant::now() < deadline, "redis-server does not accept");
            thread::sleep(Duration::from_millis(5));
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn raw(&self) -> Option<redis::Connection> {
        redis::Client::open(self.url())
            .ok()?
            .get_connection_with_timeout(Duration::from_secs(1))
            .ok()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        let dir = self.dir.clone();
        let deadline = Instant::now() + SOON;
        loop {
            let started = Server::start(self.port, &dir);
            if let Some(mut child) = started.child_alive() {
                self.child = child.take();
                return;
            }
            assert!(Instant::now() < deadline);
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn child_alive(mut self) -> Option<Option<Child>> {
        let mut child = self.child.take()?;
        std::mem::forget(self);
        match child.try_wait() {
            Ok(None) => Some(Some(child)),
            _ => None,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn a_restart_that_loads_its_data_loses_queued_cancels_and_the_reconnect_check() {
    let dir = std::env::temp_dir().join(format!("review-redis-loading-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = Server::start(free_port(), &dir);
    let url = server.url();
    let server_handle = std::sync::Arc::new(std::sync::Mutex::new(None::<Server>));
    let keeper = std::sync::Arc::clone(&server_handle);
    let outcome = within(LIMIT, move || {
        // Some data, and the record of a cancel made while the worker's job was not yet
        // registered; saved, so that the restart loads it.
        let mut raw = server.raw().unwrap();
        let mut pipe = redis::pipe();
        for i in 0..5_000 {
            pipe.cmd("SET").arg(format!("filler:{i}")).arg(i).ignore();
        }
        pipe.cmd("SET")
            .arg(record_key("away"))
            .arg("manual cancelled%20while%20you%20were%20away")
            .ignore();
        pipe.cmd("SAVE").ignore();
        let () = pipe.query(&mut raw).unwrap();

        // Default settings throughout.
        let worker = RedisRegistry::connect(&url).unwrap();
        let canceller = RedisRegistry::connect(&url).unwrap();
        let (queued_token, _queued_registration) = worker.register("queued").unwrap();

        server.kill();
        assert!(worker.wait_state(ConnectionState::Reconnecting, SOON));
        // Registered during the outage: the reconnect's check is the one that reads it.
        let (away, _away_registration) = worker.register("away").unwrap();
        // A cancel made during the outage waits in the queue.
        let delivery = canceller
            .cancel("queued", "made during the outage")
            .unwrap();

        server.restart();
        let restarted = Instant::now();
        // Wait until the server is done loading, then some.
        let mut raw = server.raw().unwrap();
        let deadline = Instant::now() + SOON;
        let loading_took = loop {
            if redis::cmd("GET")
                .arg("filler:1")
                .query::<Option<String>>(&mut raw)
                .is_ok()
            {
                break restarted.elapsed();
            }
            assert!(Instant::now() < deadline, "still loading");
            thread::sleep(Duration::from_millis(20));
        };
        let record_there = redis::cmd("EXISTS")
            .arg(record_key("away"))
            .query::<bool>(&mut raw)
            .unwrap();
        let checked = away.wait_blocking_timeout(Duration::from_secs(3));
        let delivered = delivery.wait_blocking_timeout(Duration::from_secs(3));
        let report = format!(
            "loading took {loading_took:?}; record of `away` on the server: {record_there}; \
             `away` (registered during the outage) triggered: {checked}; cancel queued during \
             the outage delivered: {delivered} ({:?}, failure {:?}); `queued` token triggered: \
             {}; worker {:?} {:?}; canceller {:?}",
            delivery,
            delivery.failure(),
            queued_token.is_triggered(),
            worker.state(),
            worker.stats(),
            canceller.stats()
        );
        *keeper.lock().unwrap() = Some(server);
        (checked && delivered, report)
    });
    drop(server_handle);
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", outcome.1);
    assert!(outcome.0, "{}", outcome.1);
}
