//! systemd's service notification protocol (`sd_notify(3)`), spoken directly:
//! one datagram per message to the socket named by `$NOTIFY_SOCKET`.
//!
//! Under `Type=notify` the service counts as started when `READY=1` arrives
//! (the bundle is loaded and the source is open); under `WatchdogSec=`,
//! systemd restarts the service when `WATCHDOG=1` stops arriving. sammix
//! sends `WATCHDOG=1` from the frame watchdog, on the same condition that
//! pets `/dev/watchdog`: frames keep finishing (see [`super::watchdog`]).
//! A hung stream thus restarts the service first, and resets the board only
//! if the restart does not help.
//!
//! No library: the protocol is a line of text on an `AF_UNIX` datagram
//! socket, and `std` has both path and (Linux) abstract addresses.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use super::watchdog::WatchdogDevice;

/// The service manager's notification socket, from `$NOTIFY_SOCKET`.
#[derive(Debug)]
pub struct SystemdNotify {
    socket: UnixDatagram,
    addr: SocketAddr,
    name: String,
    watchdog: Option<Duration>,
}

/// `$NOTIFY_SOCKET` or `$WATCHDOG_USEC` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The socket named in `$NOTIFY_SOCKET` could not be addressed or opened.
    #[error("NOTIFY_SOCKET={name}: {source}")]
    Socket {
        /// The variable's value.
        name: String,
        /// Why.
        source: io::Error,
    },
    /// `$WATCHDOG_USEC` is not a positive count of microseconds.
    #[error("WATCHDOG_USEC={0}: expected a positive number of microseconds")]
    WatchdogUsec(String),
}

impl SystemdNotify {
    /// The socket systemd gave this process, if any: `$NOTIFY_SOCKET`, with
    /// the watchdog period from `$WATCHDOG_USEC` when `$WATCHDOG_PID` is
    /// unset or names this process.
    pub fn from_env() -> Result<Option<SystemdNotify>, NotifyError> {
        let Some(name) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let name = name.to_string_lossy().into_owned();
        let for_us = std::env::var("WATCHDOG_PID")
            .map_or(true, |pid| pid.trim() == std::process::id().to_string());
        let watchdog = match std::env::var("WATCHDOG_USEC") {
            Ok(usec) if for_us => Some(parse_usec(&usec)?),
            _ => None,
        };
        SystemdNotify::connect(&name, watchdog).map(Some)
    }

    /// A notifier for the socket `name` (a path, or `@name` for a Linux
    /// abstract socket) whose manager expects `WATCHDOG=1` every `watchdog`.
    pub fn connect(name: &str, watchdog: Option<Duration>) -> Result<SystemdNotify, NotifyError> {
        let err = |source| NotifyError::Socket {
            name: name.to_string(),
            source,
        };
        let addr = address(name).map_err(err)?;
        let socket = UnixDatagram::unbound().map_err(err)?;
        Ok(SystemdNotify {
            socket,
            addr,
            name: name.to_string(),
            watchdog,
        })
    }

    /// The period within which systemd expects `WATCHDOG=1` (`WatchdogSec=`),
    /// if it watches this process.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog
    }

    /// The socket's name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends one notification, e.g. `"READY=1"` or `"STATUS=streaming"`.
    pub fn notify(&self, message: &str) -> io::Result<()> {
        let sent = self.socket.send_to_addr(message.as_bytes(), &self.addr)?;
        if sent != message.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "notification datagram truncated",
            ));
        }
        Ok(())
    }

    /// `READY=1`: startup is complete.
    pub fn ready(&self) -> io::Result<()> {
        self.notify("READY=1")
    }
}

impl WatchdogDevice for SystemdNotify {
    type Error = io::Error;

    fn pet(&mut self) -> io::Result<()> {
        self.notify("WATCHDOG=1")
    }

    /// A clean stop: `STOPPING=1`, so that systemd stops watching.
    fn disarm(&mut self) -> io::Result<()> {
        self.notify("STOPPING=1")
    }
}

/// The watchdogs the frame watchdog pets together: the hardware device and
/// systemd, either of which may be absent.
#[derive(Debug, Default)]
pub struct Watchdogs {
    /// `/dev/watchdog` or the device the profile names.
    pub device: Option<super::LinuxWatchdog>,
    /// systemd's service watchdog.
    pub systemd: Option<SystemdNotify>,
}

impl Watchdogs {
    /// `None` when there is nothing to pet.
    pub fn some(self) -> Option<Watchdogs> {
        (self.device.is_some() || self.systemd.is_some()).then_some(self)
    }
}

impl WatchdogDevice for Watchdogs {
    type Error = io::Error;

    /// Pets both; a failure of one does not keep the other unpetted.
    fn pet(&mut self) -> io::Result<()> {
        let device = self.device.as_mut().map_or(Ok(()), WatchdogDevice::pet);
        let systemd = self.systemd.as_mut().map_or(Ok(()), WatchdogDevice::pet);
        device.and(systemd)
    }

    fn disarm(&mut self) -> io::Result<()> {
        let device = self.device.as_mut().map_or(Ok(()), WatchdogDevice::disarm);
        let systemd = self.systemd.as_mut().map_or(Ok(()), WatchdogDevice::disarm);
        device.and(systemd)
    }
}

fn parse_usec(text: &str) -> Result<Duration, NotifyError> {
    match text.trim().parse::<u64>() {
        Ok(us) if us > 0 => Ok(Duration::from_micros(us)),
        _ => Err(NotifyError::WatchdogUsec(text.to_string())),
    }
}

fn address(name: &str) -> io::Result<SocketAddr> {
    if let Some(abstract_name) = name.strip_prefix('@') {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            return SocketAddr::from_abstract_name(abstract_name.as_bytes());
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = abstract_name;
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract sockets are Linux only",
            ));
        }
    }
    if !name.starts_with('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "expected an absolute socket path or @name",
        ));
    }
    SocketAddr::from_pathname(name)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    struct Listener {
        dir: PathBuf,
        socket: UnixDatagram,
    }

    impl Listener {
        fn new(tag: &str) -> (Listener, String) {
            let dir =
                std::env::temp_dir().join(format!("sammix-notify-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("notify");
            let socket = UnixDatagram::bind(&path).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            (Listener { dir, socket }, path.display().to_string())
        }

        fn next(&self) -> String {
            let mut buf = [0u8; 256];
            let n = self.socket.recv(&mut buf).expect("a notification");
            String::from_utf8(buf[..n].to_vec()).unwrap()
        }

        fn pending(&self) -> usize {
            self.socket.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 256];
            let mut n = 0;
            while self.socket.recv(&mut buf).is_ok() {
                n += 1;
            }
            self.socket.set_nonblocking(false).unwrap();
            n
        }
    }

    impl Drop for Listener {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn messages_arrive_on_a_path_socket() {
        let (listener, path) = Listener::new("path");
        let mut n = SystemdNotify::connect(&path, Some(Duration::from_secs(10))).unwrap();
        assert_eq!(n.watchdog_period(), Some(Duration::from_secs(10)));
        n.ready().unwrap();
        n.pet().unwrap();
        n.disarm().unwrap();
        assert_eq!(listener.next(), "READY=1");
        assert_eq!(listener.next(), "WATCHDOG=1");
        assert_eq!(listener.next(), "STOPPING=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn messages_arrive_on_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("sammix-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = SystemdNotify::connect(&format!("@{name}"), None).unwrap();
        n.notify("STATUS=streaming").unwrap();
        let mut buf = [0u8; 64];
        let got = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..got], b"STATUS=streaming");
    }

    #[test]
    fn a_relative_socket_name_is_refused_with_its_name() {
        let e = SystemdNotify::connect("run/notify", None).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("NOTIFY_SOCKET=run/notify"), "{text}");
        assert!(text.contains("absolute"), "{text}");
    }

    #[test]
    fn a_gone_socket_fails_the_pet() {
        let (listener, path) = Listener::new("gone");
        let mut n = SystemdNotify::connect(&path, None).unwrap();
        drop(listener);
        assert!(n.pet().is_err());
    }

    #[test]
    fn watchdog_usec_must_be_a_positive_count() {
        assert_eq!(parse_usec("3000000").unwrap(), Duration::from_secs(3));
        for bad in ["0", "", "ten", "-5"] {
            let e = parse_usec(bad).unwrap_err().to_string();
            assert!(e.contains("WATCHDOG_USEC"), "{e}");
        }
    }

    #[test]
    fn watchdogs_pet_both_and_report_a_failure() {
        let (listener, path) = Listener::new("both");
        let systemd = SystemdNotify::connect(&path, None).unwrap();
        assert!(Watchdogs::default().some().is_none());
        let mut w = Watchdogs {
            device: None,
            systemd: Some(systemd),
        }
        .some()
        .unwrap();
        w.pet().unwrap();
        w.pet().unwrap();
        assert_eq!(listener.pending(), 2);
        drop(listener);
        assert!(w.pet().is_err());
    }
}
