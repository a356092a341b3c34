//! A minimal Chrome DevTools Protocol client over `--remote-debugging-pipe` for the
//! dashboard tests: headless Chromium started through `sh` so that its fd 3 reads the
//! test's commands (our stdin pipe) and its fd 4 writes the replies (our stdout pipe);
//! messages are JSON ended by NUL. Used to lay the page out at an exact viewport width
//! (`Emulation.setDeviceMetricsOverride`; headless windows are at least 500 px wide) and
//! to evaluate measurements with the page's script running. Every wait is bounded; the
//! browser is closed, and killed by PID if it does not exit.

use crate::monitor_support::{chromium_flags, wait_or_kill, TempDir};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

pub struct Browser {
    child: Child,
    input: ChildStdin,
    replies: Receiver<Value>,
    next: u64,
    session: String,
    _profile: TempDir,
}

impl Browser {
    /// Start Chromium (`bin`) and open one blank page.
    pub fn start(bin: &str) -> Browser {
        let profile = TempDir::new("chromium-cdp");
        let script = "exec \"$0\" \"$@\" 3<&0 4>&1 </dev/null >/dev/null";
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(bin)
            .args(chromium_flags(profile.path()))
            .args(["--hide-scrollbars", "--remote-debugging-pipe"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let input = child.stdin.take().unwrap();
        let mut out = child.stdout.take().unwrap();
        let (tx, replies) = channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            while let Ok(n) = out.read(&mut chunk) {
                if n == 0 || buf.len() > 64 << 20 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.iter().position(|&b| b == 0) {
                    let msg: Vec<u8> = buf.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice::<Value>(&msg[..msg.len() - 1]) {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            input,
            replies,
            next: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let id = target["targetId"].as_str().unwrap().to_owned();
        let att = b.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": id, "flatten": true}),
        );
        b.session = att["sessionId"].as_str().unwrap().to_owned();
        b
    }

    /// Send a command and wait (at most 30 s) for its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.input.write_all(&bytes).unwrap();
        self.input.flush().unwrap();
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let v = self
                .replies
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no reply to {method} within 30 s"));
            if v["id"].as_u64() == Some(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// A command on the page.
    pub fn page(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.call(Some(&s), method, params)
    }

    /// Lay the page out `width` CSS pixels wide.
    pub fn viewport(&mut self, width: u32, height: u32) {
        self.page(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}),
        );
    }

    /// Evaluate `expr` (awaiting a promise) and return its JSON value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.page(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Navigate and wait (at most 20 s) until `ready` (an expression) is true.
    pub fn open(&mut self, url: &str, ready: &str) {
        self.page("Page.navigate", json!({"url": url}));
        self.wait(&format!(
            "document.readyState === 'complete' && !!({ready})"
        ));
    }

    /// Wait (at most 20 s) until `cond` (an expression) is true.
    pub fn wait(&mut self, cond: &str) {
        let end = Instant::now() + Duration::from_secs(20);
        while self.eval(&format!("!!({cond})")) != json!(true) {
            assert!(Instant::now() < end, "not true within 20 s: {cond}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.next += 1;
        let msg = format!("{{\"id\":{},\"method\":\"Browser.close\"}}\0", self.next);
        let _ = self.input.write_all(msg.as_bytes());
        let _ = self.input.flush();
        wait_or_kill(&mut self.child, Duration::from_secs(10));
    }
}
