//! Merging Compose files in order, as the Compose specification's merge rules say: mappings
//! merge key by key, `command`/`entrypoint`/`healthcheck.test` are replaced, environment-like
//! lists merge as mappings, volumes/devices by their container path, secrets/configs by their
//! target, other sequences append without duplicates; `!reset` removes a value, `!override`
//! replaces it whole.

use serde_yaml::{Mapping, Value};

use super::keys::key_text;

/// Merges the whole file `over` into `base`.
pub fn file(base: &mut Mapping, over: Mapping) {
    for (k, v) in over {
        let key = key_text(&k);
        if special(base, &k, &v) {
            continue;
        }
        match (key.as_str(), base.get_mut(&k)) {
            ("services", Some(Value::Mapping(b))) => named(b, v, service),
            ("networks" | "volumes" | "secrets" | "configs", Some(Value::Mapping(b))) => {
                named(b, v, deep)
            }
            (_, Some(b)) => deep_value(b, v),
            (_, None) => {
                base.insert(k, untag(v));
            }
        }
    }
}

/// A mapping of names (services, networks...): each name merged with `each`.
fn named(base: &mut Mapping, over: Value, each: fn(&mut Mapping, Mapping)) {
    let Value::Mapping(over) = over else { return };
    for (name, v) in over {
        if special(base, &name, &v) {
            continue;
        }
        match (base.get_mut(&name), v) {
            (Some(Value::Mapping(b)), Value::Mapping(o)) => each(b, o),
            (_, v) => {
                base.insert(name, untag(v));
            }
        }
    }
}

/// `!reset` and `!override` on an overriding value: handled here (true) or not.
fn special(base: &mut Mapping, k: &Value, v: &Value) -> bool {
    let Value::Tagged(t) = v else { return false };
    match t.tag.to_string().as_str() {
        "!reset" => {
            base.remove(k);
            true
        }
        "!override" => {
            base.insert(k.clone(), t.value.clone());
            true
        }
        _ => false,
    }
}

fn untag(v: Value) -> Value {
    match v {
        Value::Tagged(t) if matches!(t.tag.to_string().as_str(), "!reset" | "!override") => t.value,
        v => v,
    }
}

/// Merges one service definition `over` into `base`.
pub fn service(base: &mut Mapping, over: Mapping) {
    for (k, v) in over {
        if special(base, &k, &v) {
            continue;
        }
        let key = key_text(&k);
        let Some(b) = base.get_mut(&k) else {
            base.insert(k, untag(v));
            continue;
        };
        match key.as_str() {
            "command" | "entrypoint" => *b = v,
            "environment" | "labels" | "annotations" | "sysctls" | "extra_hosts" => {
                let mut m = to_map(b, &key);
                deep(&mut m, to_map(&v, &key));
                *b = Value::Mapping(m);
            }
            "networks" | "depends_on" | "ulimits" => {
                let mut m = names_to_map(b);
                deep(&mut m, names_to_map(&v));
                *b = Value::Mapping(m);
            }
            "build" => {
                let mut m = build_map(b);
                deep(&mut m, build_map(&v));
                *b = Value::Mapping(m);
            }
            "volumes" | "devices" => by_key(b, v, mount_target),
            "secrets" | "configs" => by_key(b, v, grant_target),
            "healthcheck" | "deploy" | "logging" | "extends" | "blkio_config" => deep_value(b, v),
            _ => match (&*b, &v) {
                (Value::Sequence(_), _) | (_, Value::Sequence(_)) => append(b, v),
                _ => deep_value(b, v),
            },
        }
    }
}

/// Deep merge of mappings; anything else (sequences included) is replaced.
pub fn deep(base: &mut Mapping, over: Mapping) {
    for (k, v) in over {
        if special(base, &k, &v) {
            continue;
        }
        match base.get_mut(&k) {
            Some(b) => deep_value(b, v),
            None => {
                base.insert(k, untag(v));
            }
        }
    }
}

fn deep_value(b: &mut Value, v: Value) {
    match (b, v) {
        (Value::Mapping(bm), Value::Mapping(om)) => deep(bm, om),
        (b, v) => *b = untag(v),
    }
}

/// Appends the items of `over` that `base` lacks (a scalar counts as a one-item list).
fn append(base: &mut Value, over: Value) {
    let mut items = as_list(base);
    for item in as_list(&over) {
        if !items.contains(&item) {
            items.push(item);
        }
    }
    *base = Value::Sequence(items);
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Sequence(s) => s.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Merges two sequences by a unique key: an item of `over` replaces the base item with its key.
fn by_key(base: &mut Value, over: Value, key: fn(&Value) -> Option<String>) {
    let mut items = as_list(base);
    for item in as_list(&over) {
        match key(&item).and_then(|k| items.iter().position(|b| key(b).as_ref() == Some(&k))) {
            Some(i) => items[i] = item,
            None if !items.contains(&item) => items.push(item),
            None => {}
        }
    }
    *base = Value::Sequence(items);
}

/// The container path of a volume or device (`src:dst[:mode]`, `dst`, or long form's target).
fn mount_target(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            Some(parts.get(1).unwrap_or(&parts[0]).to_string())
        }
        Value::Mapping(m) => m.get("target").map(key_text),
        _ => None,
    }
}

/// A secret's or config's target (or its source when the target is implied).
fn grant_target(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Mapping(m) => m.get("target").or_else(|| m.get("source")).map(key_text),
        _ => None,
    }
}

/// An environment-like value as a mapping: `["A=1", "B"]` → `{A: "1", B: null}`; extra_hosts
/// entries `host:ip` / `host=ip` split at the first separator.
pub fn to_map(v: &Value, key: &str) -> Mapping {
    match v {
        Value::Mapping(m) => m.clone(),
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                let s = key_text(item);
                let split = if key == "extra_hosts" {
                    s.split_once('=').or_else(|| s.split_once(':'))
                } else {
                    s.split_once('=')
                };
                match split {
                    Some((k, val)) => (Value::from(k), Value::from(val)),
                    None => (Value::from(s), Value::Null),
                }
            })
            .collect(),
        _ => Mapping::new(),
    }
}

/// A list of names (`[a, b]`) or a mapping of names, as a mapping.
fn names_to_map(v: &Value) -> Mapping {
    match v {
        Value::Mapping(m) => m.clone(),
        Value::Sequence(items) => items.iter().map(|i| (i.clone(), Value::Null)).collect(),
        _ => Mapping::new(),
    }
}

/// `build: dir` → `{context: dir}`.
fn build_map(v: &Value) -> Mapping {
    match v {
        Value::Mapping(m) => m.clone(),
        other => [(Value::from("context"), other.clone())]
            .into_iter()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(s: &str) -> Mapping {
        serde_yaml::from_str(s).unwrap()
    }

    fn merged(a: &str, b: &str) -> Mapping {
        let mut base = map(a);
        file(&mut base, map(b));
        base
    }

    #[test]
    fn scalars_replace_and_mappings_merge() {
        let m = merged(
            "services:\n  web:\n    image: a\n    tty: true\n  db:\n    image: d\nnetworks:\n  n:\n    driver: bridge\n",
            "services:\n  web:\n    image: b\n  cache:\n    image: c\nnetworks:\n  n:\n    internal: true\n",
        );
        assert_eq!(
            m,
            map("services:\n  web:\n    image: b\n    tty: true\n  db:\n    image: d\n  cache:\n    image: c\nnetworks:\n  n:\n    driver: bridge\n    internal: true\n")
        );
    }

    #[test]
    fn command_replaced_environment_merged() {
        let m = merged(
            "services:\n  s:\n    command: [a, b]\n    entrypoint: sh\n    environment: [A=1, B=2]\n    labels: {l: x}\n",
            "services:\n  s:\n    command: [c]\n    environment:\n      B: '3'\n      C: '4'\n    labels: [m=y]\n",
        );
        assert_eq!(
            m,
            map("services:\n  s:\n    command: [c]\n    entrypoint: sh\n    environment: {A: '1', B: '3', C: '4'}\n    labels: {l: x, m: y}\n")
        );
    }

    #[test]
    fn sequences_by_their_keys() {
        let m = merged(
            "services:\n  s:\n    ports: ['80:80']\n    volumes: ['./a:/data', 'v:/v']\n    cap_add: [NET_ADMIN]\n    dns: 1.1.1.1\n    secrets: [s1]\n",
            "services:\n  s:\n    ports: ['80:80', '81:81']\n    volumes: [{type: bind, source: ./b, target: /data}]\n    cap_add: [NET_ADMIN, SYS_ADMIN]\n    dns: [8.8.8.8]\n    secrets: [{source: s1, mode: 0400}]\n",
        );
        let s = &m["services"]["s"];
        assert_eq!(
            s["ports"],
            serde_yaml::from_str::<Value>("['80:80', '81:81']").unwrap()
        );
        assert_eq!(
            s["volumes"],
            serde_yaml::from_str::<Value>("[{type: bind, source: ./b, target: /data}, 'v:/v']")
                .unwrap()
        );
        assert_eq!(
            s["cap_add"],
            serde_yaml::from_str::<Value>("[NET_ADMIN, SYS_ADMIN]").unwrap()
        );
        assert_eq!(
            s["dns"],
            serde_yaml::from_str::<Value>("[1.1.1.1, 8.8.8.8]").unwrap()
        );
        assert_eq!(
            s["secrets"],
            serde_yaml::from_str::<Value>("[{source: s1, mode: 0400}]").unwrap()
        );
    }

    #[test]
    fn depends_on_and_networks_list_or_map() {
        let m = merged(
            "services:\n  s:\n    depends_on: [a]\n    networks: [front]\n    build: ./dir\n",
            "services:\n  s:\n    depends_on:\n      b: {condition: service_healthy}\n    networks:\n      front: {aliases: [x]}\n    build: {target: t}\n",
        );
        assert_eq!(
            m,
            map("services:\n  s:\n    depends_on: {a: null, b: {condition: service_healthy}}\n    networks: {front: {aliases: [x]}}\n    build: {context: ./dir, target: t}\n")
        );
    }

    #[test]
    fn reset_and_override() {
        let m = merged(
            "services:\n  s:\n    ports: ['80:80']\n    environment: {A: '1'}\n",
            "services:\n  s:\n    ports: !reset []\n    environment: !override {B: '2'}\n",
        );
        assert_eq!(m, map("services:\n  s:\n    environment: {B: '2'}\n"));
    }
}
