//! `burrow inspect` (and `container inspect`): Docker-shaped JSON for containers, built from
//! the containerd record, its task, the OCI spec and the network hook's state.

use std::process::ExitCode;

use serde_json::{json, Map, Value};

use super::{Ctx, State};
use burrow::connection::Globals;
use burrow::images::time::rfc3339_nano;
use burrow::network::hook;

/// How Docker writes a time that never happened (Go's zero time.Time).
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format: json (default) or a `{{.Field}}` template over the top-level fields.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

async fn one(ctx: &Ctx, query: &str) -> anyhow::Result<Value> {
    let c = ctx.find(query).await?;
    let task = ctx.client.get_task(&c.id).await?;
    let st = super::with_recorded_exit(ctx, &c.id, State::from_task(task.as_ref()));
    let spec = super::spec_of(&c);
    let process = spec.as_ref().and_then(|s| s.process().clone());
    let args = process
        .as_ref()
        .and_then(|p| p.args().clone())
        .unwrap_or_default();
    let dir = ctx.store.container_dir(&c.id);
    let net_state = hook::read_state(&dir).unwrap_or_default();
    let mut ports = Map::new();
    for p in super::ports_of(&c) {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let entry = ports.entry(key).or_insert_with(|| json!([]));
        if let Some(a) = entry.as_array_mut() {
            a.push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
        }
    }
    let mut networks = Map::new();
    for (name, ifname, result) in &net_state.attachments {
        let (ip, gw) = burrow::network::cni::first_ipv4(result).unwrap_or_default();
        let (addr, len) = ip.split_once('/').unwrap_or((&ip, ""));
        let mac = result["interfaces"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["name"] == *ifname && i["sandbox"].is_string())
            .and_then(|i| i["mac"].as_str())
            .unwrap_or_default();
        networks.insert(
            name.clone(),
            json!({
                "IPAddress": addr,
                "IPPrefixLen": len.parse::<u8>().unwrap_or(0),
                "Gateway": gw.unwrap_or_default(),
                "MacAddress": mac,
            }),
        );
    }
    let (pid, code, finished) = match &st {
        // As Docker: a container started again still shows when its previous run finished.
        State::Running { pid } | State::Paused { pid } => {
            let before = match super::recorded_exit(ctx, &c.id) {
                Some(State::Exited { at, .. }) => at,
                _ => None,
            };
            (*pid, 0, before)
        }
        State::Exited { code, at } => (0, *code, *at),
        State::Created => (0, 0, None),
    };
    let mounts: Vec<Value> = spec
        .as_ref()
        .and_then(|s| s.mounts().clone())
        .unwrap_or_default()
        .iter()
        .filter(|m| m.typ().as_deref() == Some("bind"))
        .filter(|m| {
            !matches!(
                m.destination().to_str(),
                Some("/etc/hosts" | "/etc/resolv.conf" | "/etc/hostname" | "/sys")
            )
        })
        .map(|m| {
            let ro = m.options().iter().flatten().any(|o| o == "ro");
            json!({
                "Type": "bind",
                "Source": m.source().as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                "Destination": m.destination().display().to_string(),
                "RW": !ro,
            })
        })
        .collect();
    let user_labels: Map<String, Value> = c
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Ok(json!({
        "Id": c.id,
        "Created": c.created_at.as_ref().map(|t| rfc3339_nano(super::timestamp(t))).unwrap_or_default(),
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": st.word(),
            "Running": st.is_running(),
            "Paused": matches!(st, State::Paused { .. }),
            "Pid": pid,
            "ExitCode": code,
            "StartedAt": ctx.store.started_at(&c.id).map(rfc3339_nano).unwrap_or_else(|| ZERO_TIME.to_string()),
            "FinishedAt": finished.map(rfc3339_nano).unwrap_or_else(|| ZERO_TIME.to_string()),
        },
        "Image": c.image,
        "Name": super::name_of(&c),
        "RestartCount": c.labels.get(super::labels::RESTART_COUNT).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0),
        "Platform": "linux",
        "LogPath": ctx.store.log_path(&c.id),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "ResolvConfPath": dir.join("resolv.conf"),
        "Config": {
            "Hostname": spec.as_ref().and_then(|s| s.hostname().clone()).unwrap_or_default(),
            "User": process.as_ref().map(|p| format!("{}:{}", p.user().uid(), p.user().gid())).unwrap_or_default(),
            "Env": process.as_ref().and_then(|p| p.env().clone()).unwrap_or_default(),
            "Cmd": args,
            "WorkingDir": process.as_ref().map(|p| p.cwd().display().to_string()).unwrap_or_default(),
            "Tty": process.as_ref().and_then(|p| p.terminal()).unwrap_or(false),
            "Image": c.image,
            "Labels": user_labels,
        },
        "HostConfig": {
            "RestartPolicy": restart_policy_json(c.labels.get(super::labels::RESTART_POLICY).map(String::as_str)),
            "PortBindings": ports.clone(),
            "NetworkMode": super::networks_of(&c).first().cloned().unwrap_or_else(|| "none".into()),
        },
        "Mounts": mounts,
        "NetworkSettings": {
            "IPAddress": net_state.ip.clone().unwrap_or_default(),
            "IPPrefixLen": net_state.prefix_len.unwrap_or(0),
            "Gateway": net_state.gateway.clone().unwrap_or_default(),
            "Ports": ports,
            "Networks": networks,
        },
    }))
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let mut out = Vec::new();
        for q in &args.containers {
            out.push(one(&ctx, q).await?);
        }
        match args.format.as_deref() {
            None | Some("json") => println!("{}", serde_json::to_string_pretty(&out)?),
            Some(t) => {
                for v in &out {
                    println!("{}", render(t, v));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `{{.A.B}}` paths and `{{json .A}}` over the inspect JSON.
pub fn render(template: &str, v: &Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let expr = rest[start + 2..start + end].trim();
        let (json_out, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let mut cur = v;
        for part in path
            .trim_start_matches('.')
            .split('.')
            .filter(|s| !s.is_empty())
        {
            cur = &cur[part];
        }
        if json_out || !cur.is_string() {
            out.push_str(&cur.to_string());
        } else {
            out.push_str(cur.as_str().unwrap_or_default());
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Docker's HostConfig.RestartPolicy from the policy label.
fn restart_policy_json(policy: Option<&str>) -> Value {
    let p = policy.unwrap_or("no");
    let (name, max) = match super::restart::on_failure_max(p) {
        Some(n) => ("on-failure", n),
        None => (p, 0),
    };
    json!({ "Name": name, "MaximumRetryCount": max })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_walk_paths() {
        let v = json!({"State":{"Status":"running","Pid":7},"NetworkSettings":{"IPAddress":"10.4.0.2"}});
        assert_eq!(
            render(
                "{{.State.Status}} {{.State.Pid}} {{.NetworkSettings.IPAddress}}",
                &v
            ),
            "running 7 10.4.0.2"
        );
        assert_eq!(
            render("{{json .State}}", &v),
            r#"{"Pid":7,"Status":"running"}"#
        );
    }
}
