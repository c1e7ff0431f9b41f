//! The /etc/hosts and /etc/resolv.conf a container gets.

/// /etc/hosts: loopback names, then the container's own address and names, then `--add-host`.
pub fn hosts(ip: Option<&str>, names: &[&str], extra: &[(String, String)]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost localhost.localdomain ip6-localhost ip6-loopback\n",
    );
    if let Some(ip) = ip {
        let mut seen: Vec<&str> = Vec::new();
        for n in names {
            if !n.is_empty() && !seen.contains(n) {
                seen.push(n);
            }
        }
        if !seen.is_empty() {
            s.push_str(&format!("{ip}\t{}\n", seen.join(" ")));
        }
    }
    for (host, ip) in extra {
        s.push_str(&format!("{ip}\t{host}\n"));
    }
    s
}

/// The DNS server of the launcher's userspace network stack (RootlessKit/slirp4netns's).
pub const ROOTLESS_DNS: &str = "10.0.2.3";
/// The host as rootless containers reach it: the launcher's gateway.
pub const ROOTLESS_HOST: &str = "10.0.2.2";

/// /etc/resolv.conf: `--dns` servers if given; rootless, the launcher's resolver; rootful, the
/// host's resolv.conf without loopback servers (unreachable from a container), else public ones.
pub fn resolv_conf(rootless: bool, dns: &[String], host_resolv: &str) -> String {
    resolv_conf_with(rootless, dns, &[], &[], host_resolv)
}

/// [`resolv_conf`] with `--dns-search` domains (replacing the host's; `.` for none) and
/// `--dns-option` options.
pub fn resolv_conf_with(
    rootless: bool,
    dns: &[String],
    dns_search: &[String],
    dns_options: &[String],
    host_resolv: &str,
) -> String {
    let mut search = Vec::new();
    let mut servers: Vec<String> = Vec::new();
    for line in host_resolv.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => {
                if let Some(ip) = f.next() {
                    if !(ip.starts_with("127.") || ip == "::1") {
                        servers.push(ip.to_string());
                    }
                }
            }
            Some("search") => search.extend(f.map(str::to_string)),
            _ => {}
        }
    }
    if !dns.is_empty() {
        servers = dns.to_vec();
    } else if rootless {
        servers = vec![ROOTLESS_DNS.to_string()];
    } else if servers.is_empty() {
        servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    if !dns_search.is_empty() {
        search = dns_search.iter().filter(|d| *d != ".").cloned().collect();
    }
    let mut s = String::new();
    if !search.is_empty() {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ip in servers {
        s.push_str(&format!("nameserver {ip}\n"));
    }
    if !dns_options.is_empty() {
        s.push_str(&format!("options {}\n", dns_options.join(" ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_has_container_names() {
        let h = hosts(
            Some("10.4.0.5"),
            &["abc123", "web", "web"],
            &[("db".into(), "10.4.0.9".into())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost"));
        assert!(h.contains("10.4.0.5\tabc123 web\n"));
        assert!(h.ends_with("10.4.0.9\tdb\n"));
        assert!(!hosts(None, &["x"], &[]).contains('x'));
    }

    #[test]
    fn resolv_conf_rules() {
        let host = "nameserver 127.0.0.53\nsearch example.org\nnameserver 192.0.2.1\n";
        assert_eq!(
            resolv_conf(true, &[], host),
            "search example.org\nnameserver 10.0.2.3\n"
        );
        assert_eq!(
            resolv_conf(false, &[], host),
            "search example.org\nnameserver 192.0.2.1\n"
        );
        assert_eq!(
            resolv_conf(false, &["1.1.1.1".into()], ""),
            "nameserver 1.1.1.1\n"
        );
        assert!(resolv_conf(false, &[], "nameserver 127.0.0.1\n").contains("8.8.8.8"));
        assert_eq!(
            resolv_conf_with(
                false,
                &["1.1.1.1".into()],
                &["a.test".into()],
                &["ndots:2".into()],
                host
            ),
            "search a.test\nnameserver 1.1.1.1\noptions ndots:2\n"
        );
        assert_eq!(
            resolv_conf_with(false, &["1.1.1.1".into()], &[".".into()], &[], host),
            "nameserver 1.1.1.1\n"
        );
    }
}
