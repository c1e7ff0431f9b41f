//! burrow-slirp: slirp4netns's command line and API on burrow's embedded userspace stack, so any
//! tool that runs slirp4netns (RootlessKit, podman, by hand) can run this instead.

mod api;
mod cli;
mod sandbox;
mod sys;
mod tap;

use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use burrow_rootlesskit::cidr::Cidr;
use burrow_rootlesskit::launcher::netconf::Plan;
use cli::Args;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        // slirp4netns exits 1 for a command line it cannot take (0 for --help).
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::from(e.use_stderr()));
        }
    };
    if args.version {
        print!("{}", cli::version_block());
        return ExitCode::SUCCESS;
    }
    let level = if std::env::var_os("BURROW_SLIRP_DEBUG").is_some() {
        "debug"
    } else {
        "warn"
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("burrow-slirp: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Takes an inherited descriptor named on the command line, after checking it is open.
fn inherited(fd: i32, flag: &str) -> anyhow::Result<OwnedFd> {
    if nix::fcntl::fcntl(sys::borrow(fd), nix::fcntl::FcntlArg::F_GETFD).is_err() {
        bail!("{flag} {fd}: that descriptor is not open in burrow-slirp");
    }
    Ok(sys::own_received(fd))
}

/// The checked values of the flags slirp4netns validates before it starts.
struct Checked {
    cidr: Cidr,
    mac: Option<[u8; 6]>,
    outbound: Option<std::net::Ipv4Addr>,
    outbound6: Option<std::net::Ipv6Addr>,
}

fn check(args: &Args) -> anyhow::Result<Checked> {
    args.check()?;
    let cidr = cli::parse_cidr(&args.cidr)?;
    // slirp4netns's bound and words above; below 68 the kernel refuses an IPv4 link's MTU.
    if args.mtu == 0 || args.mtu > 65521 {
        bail!("MTU must be a positive integer (< 65522)");
    }
    if args.mtu < 68 {
        bail!("--mtu {}: the kernel's IPv4 minimum is 68", args.mtu);
    }
    let mac = args.macaddress.as_deref().map(cli::parse_mac).transpose()?;
    let ifaces = if args.outbound_addr.is_some() || args.outbound_addr6.is_some() {
        cli::host_interfaces()
    } else {
        Vec::new()
    };
    let outbound = match &args.outbound_addr {
        Some(v) => match cli::outbound_address("--outbound-addr", v, false, &ifaces)? {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        },
        None => None,
    };
    let outbound6 = match &args.outbound_addr6 {
        Some(v) => match cli::outbound_address("--outbound-addr6", v, true, &ifaces)? {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        },
        None => None,
    };
    Ok(Checked {
        cidr,
        mac,
        outbound,
        outbound6,
    })
}

/// The summary slirp4netns prints on standard output when it starts.
fn print_banner(args: &Args, c: &Checked) {
    let cidr = &c.cidr;
    let mask = std::net::Ipv4Addr::from(u32::MAX << (32 - u32::from(cidr.prefix)));
    println!("Starting slirp");
    println!("* MTU:             {}", args.mtu);
    println!("* Network:         {}", cidr.network);
    println!("* Netmask:         {mask}");
    println!("* Gateway:         {}", cidr.gateway());
    println!("* DNS:             {}", cidr.dns());
    println!("* DHCP begin:      {}", cidr.host(15));
    println!("* DHCP end:        {}", cidr.host(15 + 15));
    println!("* Recommended IP:  {}", cidr.child_ip());
    if let Some(p) = &args.api_socket {
        println!("* API Socket:      {}", p.display());
    }
    if let Some(a) = c.outbound {
        println!("* Outbound IPv4:    {a}");
    }
    if let Some(a) = c.outbound6 {
        println!("* Outbound IPv6:    {a}");
    }
    if let Some(m) = c.mac {
        println!(
            "* MAC address:     {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        );
    }
    if !args.disable_host_loopback {
        println!(
            "WARNING: 127.0.0.1:* on the host is accessible as {} (set --disable-host-loopback to prohibit connecting to 127.0.0.1:*)",
            cidr.gateway()
        );
    }
}

/// The tap device to serve and the user namespace that goes with it: made in the target
/// namespace, or (--netns-type=tapfd) inherited ready-made.
fn tap_device(
    args: &Args,
    checked: &Checked,
) -> anyhow::Result<(OwnedFd, Option<std::path::PathBuf>)> {
    if args.netns_type == cli::NetnsType::Tapfd {
        if args.configure {
            bail!("--configure needs a namespace to configure: it cannot be combined with --netns-type=tapfd (configure the device where it was made)");
        }
        let fd: i32 = args
            .target
            .as_deref()
            .unwrap_or_default()
            .parse()
            .ok()
            .filter(|f| *f >= 0)
            .ok_or_else(|| anyhow::anyhow!("TAPFD must be a file descriptor number"))?;
        return Ok((inherited(fd, "TAPFD")?, args.userns_path.clone()));
    }
    let cidr = &checked.cidr;
    let (netns, userns) = args.namespaces()?;
    let plan = args.configure.then(|| Plan {
        ifname: args.tapname.clone(),
        mtu: args.mtu as u32,
        v4: (cidr.child_ip(), cidr.prefix, cidr.gateway()),
        v6: args.enable_ipv6.then(|| {
            (
                "fd00::100".parse().expect("literal"),
                64,
                "fd00::2".parse().expect("literal"),
            )
        }),
    });
    let tap = tap::open(&tap::TapRequest {
        netns: &netns,
        userns: userns.as_deref(),
        name: &args.tapname,
        mtu: args.mtu,
        mac: checked.mac,
        configure: plan,
    })?;
    Ok((tap, userns))
}

fn run(args: Args) -> anyhow::Result<()> {
    let checked = check(&args)?;
    let cidr = checked.cidr;
    let exit_fd = args
        .exit_fd
        .map(|fd| inherited(fd, "--exit-fd"))
        .transpose()?;
    let ready_fd = args
        .ready_fd
        .map(|fd| inherited(fd, "--ready-fd"))
        .transpose()?;
    let (tap, userns) = tap_device(&args, &checked)?;
    // Everything read from the filesystem is read now, before any sandbox hides it.
    let dns_upstream = if args.disable_dns {
        None
    } else {
        let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        burrow_netstack::resolver_from(&conf)
    };
    let api_listener = match &args.api_socket {
        Some(p) => {
            if std::fs::symlink_metadata(p)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
            {
                let _ = std::fs::remove_file(p);
            }
            Some(listen_api(p)?)
        }
        None => None,
    };
    print_banner(&args, &checked);
    if args.enable_sandbox {
        sandbox::enter(userns.as_deref())?;
    }
    if args.enable_seccomp {
        sandbox::seccomp()?;
    }
    let stack = Arc::new(
        burrow_netstack::spawn_stack(
            tap,
            burrow_netstack::StackConfig {
                cidr: (cidr.network, cidr.prefix),
                mtu: args.mtu,
                disable_host_loopback: args.disable_host_loopback,
                dns_upstream,
                disable_dns: args.disable_dns,
                ipv6: args.enable_ipv6,
                outbound_addr: checked.outbound,
                outbound_addr6: checked.outbound6,
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    if let Some(l) = api_listener {
        let api = Arc::new(api::Api::new(stack.clone(), cidr.child_ip()));
        std::thread::Builder::new()
            .name("api".into())
            .spawn(move || api.serve(l))
            .context("cannot start the API thread")?;
    }
    if let Some(fd) = ready_fd {
        nix::unistd::write(&fd, b"1").context("cannot write to --ready-fd")?;
    }
    // Run until the exit fd says so or the stack ends (the namespace went away).
    loop {
        if !stack.is_running() {
            bail!("the network stack stopped (the namespace's tap device was closed)");
        }
        match &exit_fd {
            Some(fd) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                if poll(&mut fds, PollTimeout::from(1000u16)).unwrap_or(0) > 0 {
                    return Ok(());
                }
            }
            None => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

/// Listens on the API socket at `p`, private to the user. The socket is bound and made private
/// under a temporary name beside `p` and renamed into place, so a client that sees `p` can
/// connect at once (bound-but-not-listening never shows) and no other user ever could.
fn listen_api(p: &std::path::Path) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = p.with_file_name(format!(".{name}.{}", std::process::id()));
    // sun_path holds 107 bytes; a temporary name too long for it binds at `p` directly.
    let stage = if tmp.as_os_str().len() < 108 { &tmp } else { p };
    let _ = std::fs::remove_file(&tmp);
    let l = UnixListener::bind(stage)
        .with_context(|| format!("cannot listen on the API socket {}", p.display()))?;
    std::fs::set_permissions(stage, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private", p.display()))?;
    if stage != p {
        std::fs::rename(stage, p)
            .with_context(|| format!("cannot move the API socket into place at {}", p.display()))?;
    }
    Ok(l)
}
