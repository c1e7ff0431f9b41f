//! The attach socket of a container whose stdio a background reader holds (`run -d -i`/`-t`, or
//! an attached run after its detach keys): the reader serves `attach.sock` next to the FIFOs,
//! sends every client the output as it comes, and writes what clients send to the stdin FIFO;
//! a session joins it as a client.
//!
//! Server → client: frames of a stream byte (1 stdout, 2 stderr), a big-endian u32 length and
//! the bytes; the first frame is an empty stdout frame, sent once the client gets the output (a
//! client can wait for it before the process starts, so no output is missed). Client → server:
//! raw stdin bytes; the client's write shutdown ends its input (and with `stdin_once` the
//! process's stdin: the reader lets go of it).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The socket's name in the FIFO dir.
pub const SOCKET: &str = "attach.sock";
/// A client that cannot take output this long is dropped rather than stall the container.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// One frame's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

/// Encodes a frame.
pub fn frame(stream: Stream, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(5 + data.len());
    f.push(stream as u8);
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// Reads the next frame; None at the end of the stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(Stream, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let stream = match head[0] {
        1 => Stream::Stdout,
        2 => Stream::Stderr,
        b => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad attach frame stream {b}"),
            ))
        }
    };
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > 16 * 1024 * 1024 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "attach frame too large",
        ));
    }
    let mut data = vec![0u8; len];
    r.read_exact(&mut data)?;
    Ok(Some((stream, data)))
}

/// The server side: the clients attached now.
#[derive(Debug)]
pub struct Hub {
    clients: Mutex<Vec<UnixStream>>,
    path: PathBuf,
}

impl Hub {
    /// Listens on `dir/attach.sock` (owner only) and accepts clients in a thread; what they send
    /// goes to `stdin` (the container's stdin FIFO) when there is one. With `stdin_once` the
    /// end of the first client's input closes it (Docker's StdinOnce: the client that attached
    /// before the start).
    pub fn serve(dir: &Path, stdin: Option<File>, stdin_once: bool) -> io::Result<Arc<Hub>> {
        let path = dir.join(SOCKET);
        let _ = std::fs::remove_file(&path);
        let (_dir, short) = short_path(dir)?;
        let listener = UnixListener::bind(&short)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let hub = Arc::new(Hub {
            clients: Mutex::new(Vec::new()),
            path,
        });
        let stdin = stdin.map(|f| Arc::new(Mutex::new(Some(f))));
        let h = Arc::clone(&hub);
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().flatten().enumerate() {
                let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
                if let Ok(mut c) = conn.try_clone() {
                    if let Ok(mut all) = h.clients.lock() {
                        // Registered: from now on it gets every output frame.
                        if c.write_all(&frame(Stream::Stdout, b"")).is_ok() {
                            all.push(c);
                        }
                    }
                }
                if let Some(stdin) = stdin.clone() {
                    let once = stdin_once && n == 0;
                    std::thread::spawn(move || forward_input(conn, &stdin, once));
                }
            }
        });
        Ok(hub)
    }

    /// Sends output to every client; clients that fail are dropped.
    pub fn broadcast(&self, stream: Stream, data: &[u8]) {
        let Ok(mut all) = self.clients.lock() else {
            return;
        };
        if all.is_empty() {
            return;
        }
        let f = frame(stream, data);
        all.retain_mut(|c| c.write_all(&f).is_ok());
    }

    /// The output is over: clients see the end of the stream; the socket goes away.
    pub fn close(&self) {
        if let Ok(mut all) = self.clients.lock() {
            for c in all.drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Connects to the attach socket in `dir`.
pub fn connect(dir: &Path) -> io::Result<UnixStream> {
    let (_dir, short) = short_path(dir)?;
    UnixStream::connect(short)
}

/// The socket's path through an open fd of its dir (`/proc/self/fd/N/attach.sock`): a
/// container's dir is longer than the 108 bytes a unix socket path may have.
fn short_path(dir: &Path) -> io::Result<(File, PathBuf)> {
    use std::os::fd::AsRawFd;
    let d = File::open(dir)?;
    let p = PathBuf::from(format!("/proc/self/fd/{}/{SOCKET}", d.as_raw_fd()));
    Ok((d, p))
}

/// A session's end of the attach socket: the output frames copied to the endpoints' writers,
/// with `opts.stdin` the endpoints' input sent until it ends or the detach keys are typed.
#[derive(Debug)]
pub(crate) struct Joined {
    sock: UnixStream,
}

impl Joined {
    /// Connects to the socket in `dir` and starts copying; an error when nothing serves it.
    pub(crate) fn connect(
        dir: &Path,
        opts: super::Options,
        ends: super::Endpoints,
        events: super::pump::Events,
        running: &super::pump::Running,
    ) -> Result<Joined, super::SessionError> {
        use super::pump::{self, Event, InputEnd};
        use super::SessionError;
        let sock = connect(dir).map_err(SessionError::Connect)?;
        // Output: the end of the stream is the container's end.
        let mut out_sock = sock.try_clone().map_err(SessionError::Attach)?;
        let (mut stdout, mut stderr) = (ends.stdout, ends.stderr);
        let (tx, running) = (events.clone(), running.clone());
        running.begin();
        std::thread::spawn(move || {
            while let Ok(Some((stream, data))) = read_frame(&mut out_sock) {
                let sink = match stream {
                    Stream::Stdout => &mut stdout,
                    Stream::Stderr => &mut stderr,
                };
                if sink.write_all(&data).and_then(|()| sink.flush()).is_err() {
                    break;
                }
            }
            running.end();
            let _ = tx.send(Event::OutputEnded);
        });
        if opts.stdin {
            let mut in_sock = sock.try_clone().map_err(SessionError::Attach)?;
            let (mut input, keys) = (ends.input, opts.detach_keys);
            std::thread::spawn(
                move || match pump::forward_input(&mut input, &mut in_sock, keys) {
                    InputEnd::Detached => {
                        let _ = events.send(Event::Detached);
                    }
                    // Our input ended: the container's stdin stays open, as Docker leaves it.
                    InputEnd::Eof => {
                        let _ = in_sock.shutdown(std::net::Shutdown::Write);
                    }
                    InputEnd::SinkClosed => {}
                },
            );
        }
        Ok(Joined { sock })
    }

    /// How long the last output may take after the container exited (the reader sends the
    /// last frames, then closes).
    pub(crate) fn drain_limit(&self) -> Duration {
        Duration::from_millis(50)
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

/// Copies one client's input into the container's stdin until the client stops sending; with
/// `once`, its end lets go of the stdin (the process sees EOF once the shim's end is closed).
fn forward_input(mut conn: UnixStream, stdin: &Mutex<Option<File>>, once: bool) {
    let mut buf = [0u8; 8192];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Err(_) => return,
            Ok(n) => {
                let Ok(mut f) = stdin.lock() else { return };
                let Some(f) = f.as_mut() else { return };
                if f.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    if once {
        if let Ok(mut f) = stdin.lock() {
            f.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut wire = frame(Stream::Stdout, b"hello\n");
        wire.extend(frame(Stream::Stderr, b""));
        wire.extend(frame(Stream::Stderr, b"oops"));
        let mut r = io::Cursor::new(wire);
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((Stream::Stdout, b"hello\n".to_vec()))
        );
        assert_eq!(read_frame(&mut r).unwrap(), Some((Stream::Stderr, vec![])));
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((Stream::Stderr, b"oops".to_vec()))
        );
        assert_eq!(read_frame(&mut r).unwrap(), None);
        assert!(read_frame(&mut io::Cursor::new(vec![9, 0, 0, 0, 0])).is_err());
    }

    #[test]
    fn clients_get_output_and_send_input() {
        let base = tempfile::tempdir().unwrap();
        // As long as a container's dir: longer than a socket path may be.
        let dir = base.path().join("d".repeat(120));
        std::fs::create_dir(&dir).unwrap();
        let dir = tempfile::TempDir::new_in(&dir).unwrap();
        let fifo = dir.path().join("in");
        let sink = File::create(&fifo).unwrap();
        let hub = Hub::serve(dir.path(), Some(sink), false).unwrap();
        let mut c = connect(dir.path()).unwrap();
        assert_eq!(
            read_frame(&mut c).unwrap(),
            Some((Stream::Stdout, Vec::new())),
            "the hub says when the client is registered"
        );
        // Wait until the hub has the client.
        for _ in 0..100 {
            if !hub.clients.lock().unwrap().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        hub.broadcast(Stream::Stdout, b"out");
        assert_eq!(
            read_frame(&mut c).unwrap(),
            Some((Stream::Stdout, b"out".to_vec()))
        );
        c.write_all(b"typed").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut got = String::new();
        for _ in 0..100 {
            got = std::fs::read_to_string(&fifo).unwrap();
            if got == "typed" {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(got, "typed");
        hub.close();
        assert_eq!(read_frame(&mut c).unwrap(), None);
        assert!(!dir.path().join(SOCKET).exists());
    }

    #[test]
    fn with_stdin_once_the_first_clients_end_lets_go_of_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in");
        let hub = Hub::serve(dir.path(), Some(File::create(&file).unwrap()), true).unwrap();
        let mut first = connect(dir.path()).unwrap();
        assert!(read_frame(&mut first).unwrap().is_some());
        first.write_all(b"once").unwrap();
        first.shutdown(std::net::Shutdown::Write).unwrap();
        let settled = |want: &str| {
            (0..100).any(|_| {
                std::thread::sleep(Duration::from_millis(10));
                std::fs::read_to_string(&file).unwrap() == want
            })
        };
        assert!(settled("once"));
        // Let go of: a later client's input goes nowhere.
        std::thread::sleep(Duration::from_millis(50));
        let mut later = connect(dir.path()).unwrap();
        assert!(read_frame(&mut later).unwrap().is_some());
        later.write_all(b"more").unwrap();
        later.shutdown(std::net::Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "once");
        hub.close();
    }
}
