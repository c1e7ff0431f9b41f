//! A container as Docker's inspect shows it (`burrow inspect`, and the Docker API's
//! `GET /containers/{id}/json`): built from the containerd record, its task, the OCI spec and
//! the network hook's state.

use containerd_client::services::v1::Container;
use serde_json::{json, Map, Value};

use super::record::{self, State};
use super::values::RestartPolicy;
use super::{labels, Ctx};
use crate::images::time::rfc3339_nano;
use crate::network::hook;

/// How Docker writes a time that never happened (Go's zero time.Time).
pub use crate::images::time::ZERO as ZERO_TIME;

/// [`inspect`] with Docker's `SizeRw` (the container's own layer) and `SizeRootFs` (all of its
/// filesystem) when `size` (`inspect --size`, the API's `size=1`); 0 where they cannot be read.
pub async fn inspect_sized(ctx: &Ctx, query: &str, size: bool) -> anyhow::Result<Value> {
    let mut v = inspect(ctx, query).await?;
    if size {
        let c = ctx.find(query).await?;
        let (rw, total) = ctx
            .client
            .snapshot_sizes(&c.snapshotter, &c.snapshot_key)
            .await
            .unwrap_or((0, 0));
        v["SizeRw"] = rw.into();
        v["SizeRootFs"] = total.into();
    }
    Ok(v)
}

/// The inspect document of the container `query` names (id, name or id prefix).
pub async fn inspect(ctx: &Ctx, query: &str) -> anyhow::Result<Value> {
    let c = ctx.find(query).await?;
    let task = ctx.client.get_task(&c.id).await?;
    let st = record::with_recorded_exit(ctx, &c.id, State::from_task(task.as_ref()));
    let spec = record::spec_of(&c);
    let process = spec.as_ref().and_then(|s| s.process().clone());
    let args = process
        .as_ref()
        .and_then(|p| p.args().clone())
        .unwrap_or_default();
    let dir = ctx.store.container_dir(&c.id);
    let net_state = hook::read_state(&dir).unwrap_or_default();
    let devices: Value = c
        .labels
        .get(labels::DEVICES)
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_else(|| json!({}));
    let mounts = super::mounts::MountRecord::read(&dir, spec.as_ref());
    // Entrypoint and Cmd apart, the user as given: from what create was asked (the spec has
    // the whole argv, `--init`'s init in front, and numbers); older containers: the spec's.
    let asked = super::asked::Asked::read(&dir);
    let argv: Vec<String> = match &asked {
        Some(a) => a.entrypoint.iter().chain(&a.cmd).cloned().collect(),
        None => args.clone(),
    };
    let list_or_null = |v: &[String]| match v.is_empty() {
        true => Value::Null,
        false => json!(v),
    };
    let (entrypoint, cmd) = match &asked {
        Some(a) => (list_or_null(&a.entrypoint), list_or_null(&a.cmd)),
        None => (Value::Null, json!(args)),
    };
    let user = match &asked {
        Some(a) => a.user.clone(),
        None => process
            .as_ref()
            .map(|p| format!("{}:{}", p.user().uid(), p.user().gid()))
            .unwrap_or_default(),
    };
    let exposed: Option<Map<String, Value>> = asked
        .as_ref()
        .filter(|a| !a.exposed_ports.is_empty())
        .map(|a| {
            a.exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect()
        });
    // Config.Volumes: the paths of its anonymous volumes (the image's VOLUMEs, `-v /path`).
    let anonymous: Map<String, Value> = super::mounts::anonymous_of(ctx, &c)
        .into_iter()
        .map(|(dest, _)| (dest, json!({})))
        .collect();
    let user_labels: Map<String, Value> = record::user_labels_of(&c)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    // Labels burrow sets to "true" (docker attach reads OpenStdin to attach its input).
    let flag = |k: &str| c.labels.get(k).is_some_and(|v| v == "true");
    let mut doc = json!({
        "Id": c.id,
        "Created": c.created_at.as_ref().map(|t| rfc3339_nano(record::timestamp(t))).unwrap_or_default(),
        "Path": argv.first().cloned().unwrap_or_default(),
        "Args": argv.iter().skip(1).collect::<Vec<_>>(),
        "State": state_json(ctx, &c, &st),
        "Image": c.labels.get(labels::IMAGE_ID).cloned().unwrap_or_else(|| c.image.clone()),
        "Name": record::name_of(&c),
        "RestartCount": c.labels.get(labels::RESTART_COUNT).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0),
        "Platform": c.labels.get(labels::PLATFORM).and_then(|p| p.split('/').next()).unwrap_or("linux"),
        "LogPath": ctx.store.log_path(&c.id),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "ResolvConfPath": dir.join("resolv.conf"),
        "Config": {
            "Hostname": spec.as_ref().and_then(|s| s.hostname().clone()).unwrap_or_default(),
            "Domainname": spec.as_ref().and_then(|s| s.domainname().clone()).unwrap_or_default(),
            "User": user,
            "AttachStdin": asked.as_ref().is_some_and(|a| a.attach_stdin),
            "AttachStdout": asked.as_ref().is_some_and(|a| a.attach_stdout),
            "AttachStderr": asked.as_ref().is_some_and(|a| a.attach_stderr),
            // As Docker: the image's and the request's, not what the runtime adds (HOSTNAME ...).
            "Env": asked.as_ref().and_then(|a| a.env.clone())
                .or_else(|| process.as_ref().and_then(|p| p.env().clone()))
                .unwrap_or_default(),
            "Cmd": cmd,
            "Entrypoint": entrypoint,
            "ExposedPorts": exposed,
            "StopSignal": asked.as_ref().map(|a| a.stop_signal.clone()).unwrap_or_default(),
            "WorkingDir": process.as_ref().map(|p| p.cwd().display().to_string()).unwrap_or_default(),
            "Tty": process.as_ref().and_then(|p| p.terminal()).unwrap_or(false),
            "OpenStdin": flag(labels::STDIN_OPEN),
            "StdinOnce": flag(labels::STDIN_ONCE),
            "Image": c.image,
            "Volumes": if anonymous.is_empty() { Value::Null } else { Value::Object(anonymous) },
            "OnBuild": null,
            "Labels": user_labels,
            "Healthcheck": super::health::config_of(&c),
        },
        "HostConfig": {
            "AutoRemove": flag(labels::AUTO_REMOVE),
            "RestartPolicy": restart_policy_json(c.labels.get(labels::RESTART_POLICY).map(String::as_str)),
            "PortBindings": ports_json(&record::ports_of(&c).into_iter().map(record::ShownPort::from).collect::<Vec<_>>()),
            "NetworkMode": record::networks_of(&c).first().cloned().unwrap_or_else(|| "none".into()),
            "Devices": devices.get("Devices").cloned().unwrap_or_else(|| json!([])),
            "DeviceCgroupRules": devices.get("DeviceCgroupRules").cloned().unwrap_or(Value::Null),
            "DeviceRequests": devices.get("DeviceRequests").cloned().unwrap_or(Value::Null),
            "UsernsMode": c.labels.get(labels::USERNS).cloned().unwrap_or_default(),
            "VolumesFrom": mounts.volumes_from,
            "LogConfig": log_config_json(ctx, &c.id),
            "Runtime": super::runtime::name_of(&c),
        },
        "Mounts": mounts.mounts,
        "NetworkSettings": {
            "IPAddress": net_state.ip.clone().unwrap_or_default(),
            "IPPrefixLen": net_state.prefix_len.unwrap_or(0),
            "Gateway": net_state.gateway.clone().unwrap_or_default(),
            "MacAddress": net_state.attachments.first().and_then(|(_, ifname, r)| crate::network::cni::mac_of(r, ifname)).unwrap_or_default(),
            "Ports": ports_json(&record::shown_ports(&c, &st, &asked.as_ref().map(|a| a.exposed_ports.clone()).unwrap_or_default())),
            "Networks": networks_json(ctx, &c.id, hook::read_config(&dir).as_ref(), &net_state),
        },
    });
    // Docker's StopTimeout is there only when set (--stop-timeout).
    if let (Some(t), Some(cfg)) = (
        c.labels
            .get(labels::STOP_TIMEOUT)
            .and_then(|t| t.parse::<i64>().ok()),
        doc["Config"].as_object_mut(),
    ) {
        cfg.insert("StopTimeout".into(), json!(t));
    }
    // HostConfig as asked (binds, capabilities, DNS, limits ...), beside what the spec shows.
    if let (Some(a), Some(hc)) = (&asked, doc["HostConfig"].as_object_mut()) {
        if let Ok(Value::Object(more)) = serde_json::to_value(&a.host) {
            hc.extend(more);
        }
    }
    Ok(doc)
}

/// Docker's `HostConfig.LogConfig`: the log driver (Compose reads logs only from containers
/// whose driver it knows can be read back).
fn log_config_json(ctx: &Ctx, id: &str) -> Value {
    let opts = super::logopts::LogOpts::load(&ctx.store.log_path(id));
    json!({ "Type": serde_json::to_value(opts.driver).unwrap_or(Value::Null), "Config": opts.given })
}

/// `State`: status, pid, exit code, start and finish times, health.
fn state_json(ctx: &Ctx, c: &Container, st: &State) -> Value {
    let mut v = state_fields(ctx, c, st);
    // Docker's State.Health: only with a healthcheck, once started.
    if let (Some(h), Some(o)) = (super::health::health_of(ctx, c), v.as_object_mut()) {
        o.insert("Health".into(), json!(h));
    }
    v
}

fn state_fields(ctx: &Ctx, c: &Container, st: &State) -> Value {
    let (pid, code, finished) = match st {
        // As Docker: a container started again still shows when its previous run finished.
        State::Running { pid } | State::Paused { pid } => {
            let before = match record::recorded_exit(ctx, &c.id) {
                Some(State::Exited { at, .. }) => at,
                _ => None,
            };
            (*pid, 0, before)
        }
        State::Exited { code, at } => (0, *code, *at),
        State::Created => (0, 0, None),
    };
    // A failed start: Docker's exit code for it and why (until a start succeeds).
    let failed = match st {
        State::Created | State::Exited { .. } => record::start_error(ctx, &c.id),
        _ => None,
    };
    let code = failed.as_ref().map_or(code, |f| f.code);
    let error = failed.map(|f| f.message).unwrap_or_default();
    json!({
        "Status": st.word(),
        "Running": st.is_running(),
        "Paused": matches!(st, State::Paused { .. }),
        "Restarting": false,
        "OOMKilled": false,
        "Dead": false,
        "Pid": pid,
        "ExitCode": code,
        "Error": error,
        "StartedAt": ctx.store.started_at(&c.id).map(rfc3339_nano).unwrap_or_else(|| ZERO_TIME.to_string()),
        "FinishedAt": finished.map(rfc3339_nano).unwrap_or_else(|| ZERO_TIME.to_string()),
    })
}

/// Docker's port map: `"80/tcp": [{"HostIp": .., "HostPort": ..}]`, `null` for a port only
/// exposed.
fn ports_json(shown: &[record::ShownPort]) -> Map<String, Value> {
    let mut ports = Map::new();
    for p in shown {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let Some(b) = &p.binding else {
            ports.entry(key).or_insert(Value::Null);
            continue;
        };
        // (shown_ports lists an exposed-only port once, and only when nothing binds it.)
        let entry = ports.entry(key).or_insert_with(|| json!([]));
        if let Some(a) = entry.as_array_mut() {
            a.push(json!({"HostIp": b.host_ip, "HostPort": b.host_port.to_string()}));
        }
    }
    ports
}

/// What Docker's container list carries of a container besides its summary:
/// `NetworkSettings.Networks` (as inspect shows them) and `Mounts`.
pub fn list_extras(ctx: &Ctx, c: &Container) -> (Value, Value) {
    let dir = ctx.store.container_dir(&c.id);
    let net_state = hook::read_state(&dir).unwrap_or_default();
    let networks = networks_json(ctx, &c.id, hook::read_config(&dir).as_ref(), &net_state);
    let spec = record::spec_of(c);
    let mounts = super::mounts::MountRecord::read(&dir, spec.as_ref()).mounts;
    (
        Value::Object(networks),
        serde_json::to_value(mounts).unwrap_or_else(|_| json!([])),
    )
}

/// `NetworkSettings.Networks`: every network the container is on (or will be, when it
/// starts), with its aliases there (on user-defined networks also its short ID, as Docker
/// lists it: Compose looks for it) and, while attached, its address, gateway and MAC.
fn networks_json(
    ctx: &Ctx,
    id: &str,
    cfg: Option<&hook::HookConfig>,
    net_state: &hook::HookState,
) -> Map<String, Value> {
    let mut networks = Map::new();
    for (name, _) in cfg.map(|c| c.networks.as_slice()).unwrap_or_default() {
        let ep = cfg.map(|c| c.endpoint(name)).unwrap_or_default();
        let mut aliases = ep.aliases.clone();
        let short = &id[..id.len().min(12)];
        if name != crate::network::DEFAULT_NETWORK && !aliases.iter().any(|a| a == short) {
            aliases.push(short.to_string());
        }
        let attached = net_state.attachments.iter().find(|(n, _, _)| n == name);
        let (ip, gw) = attached
            .and_then(|(_, _, r)| crate::network::cni::first_ipv4(r))
            .unwrap_or_default();
        let (addr, len) = ip.split_once('/').unwrap_or((&ip, ""));
        let mac = attached
            .and_then(|(_, ifname, r)| crate::network::cni::mac_of(r, ifname))
            .unwrap_or_default();
        let id = crate::network::get(&ctx.net, name)
            .map(|n| n.id)
            .unwrap_or_default();
        networks.insert(
            name.clone(),
            json!({
                "Aliases": aliases,
                "NetworkID": id,
                "IPAddress": addr,
                "IPPrefixLen": len.parse::<u8>().unwrap_or(0),
                "Gateway": gw.unwrap_or_default(),
                "MacAddress": mac,
                "IPAMConfig": ep.ip.map(|ip| json!({"IPv4Address": ip})),
            }),
        );
    }
    networks
}

/// Docker's HostConfig.RestartPolicy from the policy label.
fn restart_policy_json(policy: Option<&str>) -> Value {
    let p = policy.unwrap_or("no");
    let (name, max) = match p.parse::<RestartPolicy>() {
        Ok(RestartPolicy::OnFailure(n)) => ("on-failure", n),
        _ => (p, 0),
    };
    json!({ "Name": name, "MaximumRetryCount": max })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_read_as_docker_writes_them() {
        assert_eq!(restart_policy_json(None)["Name"], "no");
        let v = restart_policy_json(Some("on-failure:3"));
        assert_eq!(
            (v["Name"].as_str(), v["MaximumRetryCount"].as_u64()),
            (Some("on-failure"), Some(3))
        );
        assert_eq!(restart_policy_json(Some("always"))["Name"], "always");
    }
}
