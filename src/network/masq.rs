//! Masquerading of a bridge network's traffic to the outside, one rule per network (Docker's
//! `-s SUBNET ! -o BRIDGE -j MASQUERADE` in nat's POSTROUTING) in place of the CNI bridge
//! plugin's `ipMasq`, which makes a chain and three rules per container (about ten iptables
//! runs on each attach) and, called after the container's namespace is gone as a poststop
//! DEL is, cannot find the addresses to remove them by, so they stayed behind.

use std::process::Command;

use serde_json::Value;

/// An iptables run failed.
#[derive(Debug, thiserror::Error)]
pub enum MasqError {
    #[error("running {tool} (install iptables): {source}")]
    Exec {
        tool: &'static str,
        source: std::io::Error,
    },
    #[error(
        "{tool} {args} failed: {why} (see whether {tool} works where the bridge is: `burrow \
         setup nsenter -- {tool} -t nat -S` rootless, `{tool} -t nat -S` rootful)"
    )]
    Failed {
        tool: &'static str,
        args: String,
        why: String,
    },
}

/// The bridge plugin of `conf` when it masquerades: its bridge name and subnets.
fn masquerading(conf: &Value) -> Option<(&str, Vec<&str>)> {
    let b = conf["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["type"] == "bridge" && p["ipMasq"] == true)?;
    let subnets = b["ipam"]["ranges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|r| r["subnet"].as_str())
        .chain(b["ipam"]["subnet"].as_str())
        .collect();
    Some((b["bridge"].as_str()?, subnets))
}

/// `conf` as the plugins run it, and the rule each of its subnets needs: the bridge plugin's
/// `ipMasq` off where it was on (see the module doc).
pub fn plugin_conf(conf: &Value) -> (Value, Vec<Rule>) {
    let Some((bridge, subnets)) = masquerading(conf) else {
        return (conf.clone(), Vec::new());
    };
    let rules = subnets
        .into_iter()
        .map(|s| Rule {
            subnet: s.to_string(),
            bridge: bridge.to_string(),
        })
        .collect();
    let mut conf = conf.clone();
    if let Some(plugins) = conf["plugins"].as_array_mut() {
        for p in plugins.iter_mut().filter(|p| p["type"] == "bridge") {
            p["ipMasq"] = Value::Bool(false);
        }
    }
    (conf, rules)
}

/// One network's masquerading rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub subnet: String,
    pub bridge: String,
}

impl Rule {
    fn tool(&self) -> &'static str {
        if self.subnet.contains(':') {
            "ip6tables"
        } else {
            "iptables"
        }
    }

    fn spec(&self) -> [&str; 7] {
        [
            "-s",
            &self.subnet,
            "!",
            "-o",
            &self.bridge,
            "-j",
            "MASQUERADE",
        ]
    }

    /// Adds the rule in the calling thread's network namespace unless it is there. Two
    /// attaches at once may both add it; [`remove_for`] takes every copy.
    pub fn ensure(&self) -> Result<(), MasqError> {
        let mut check = vec!["-t", "nat", "-C", "POSTROUTING"];
        check.extend(self.spec());
        check.push("--wait");
        let out = run(self.tool(), &check)?;
        match out.status.code() {
            Some(0) => Ok(()),
            // 1: no such rule (2 would be a bad command or no such table).
            Some(1) => {
                let mut add = vec!["-t", "nat", "-A", "POSTROUTING"];
                add.extend(self.spec());
                add.push("--wait");
                checked(self.tool(), &add, run(self.tool(), &add)?)
            }
            _ => checked(self.tool(), &check, out),
        }
    }
}

/// Removes every masquerading rule of `bridge` (both families) in the calling thread's
/// network namespace: a removed network's.
pub fn remove_for(bridge: &str) -> Result<(), MasqError> {
    for tool in ["iptables", "ip6tables"] {
        let list = ["-t", "nat", "-S", "POSTROUTING", "--wait"];
        let out = run(tool, &list)?;
        if !out.status.success() {
            // No such table (ip6tables without IPv6): nothing of ours there.
            continue;
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let ["-A", "POSTROUTING", "-s", subnet, "!", "-o", b, "-j", "MASQUERADE"] = words[..]
            {
                if b == bridge {
                    let del = [
                        "-t",
                        "nat",
                        "-D",
                        "POSTROUTING",
                        "-s",
                        subnet,
                        "!",
                        "-o",
                        b,
                        "-j",
                        "MASQUERADE",
                        "--wait",
                    ];
                    checked(tool, &del, run(tool, &del)?)?;
                }
            }
        }
    }
    Ok(())
}

fn run(tool: &'static str, args: &[&str]) -> Result<std::process::Output, MasqError> {
    Command::new(tool)
        .args(args)
        // Hooks run with the runtime's environment, which may have no PATH.
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .output()
        .map_err(|source| MasqError::Exec { tool, source })
}

fn checked(tool: &'static str, args: &[&str], out: std::process::Output) -> Result<(), MasqError> {
    if out.status.success() {
        return Ok(());
    }
    Err(MasqError::Failed {
        tool,
        args: args.join(" "),
        why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_plugin_stops_masquerading_and_each_subnet_gets_a_rule() {
        let conf = json!({"name":"n","plugins":[
            {"type":"bridge","bridge":"br-1","ipMasq":true,"ipam":{"type":"host-local",
             "ranges":[[{"subnet":"10.4.1.0/24"}],[{"subnet":"fd00:1::/64"}]]}},
            {"type":"firewall"}]});
        let (run, rules) = plugin_conf(&conf);
        assert_eq!(run["plugins"][0]["ipMasq"], false);
        assert_eq!(run["plugins"][1], conf["plugins"][1]);
        assert_eq!(
            rules,
            [
                Rule {
                    subnet: "10.4.1.0/24".into(),
                    bridge: "br-1".into()
                },
                Rule {
                    subnet: "fd00:1::/64".into(),
                    bridge: "br-1".into()
                },
            ]
        );
        assert_eq!(rules[0].tool(), "iptables");
        assert_eq!(rules[1].tool(), "ip6tables");
    }

    #[test]
    fn networks_without_masquerading_are_left_alone() {
        let internal = json!({"plugins":[{"type":"bridge","bridge":"br-2","ipMasq":false,
            "ipam":{"ranges":[[{"subnet":"10.4.2.0/24"}]]}}]});
        let (run, rules) = plugin_conf(&internal);
        assert_eq!(run, internal);
        assert!(rules.is_empty());
        let macvlan = json!({"plugins":[{"type":"macvlan","master":"eth0"}]});
        assert!(plugin_conf(&macvlan).1.is_empty());
    }
}
