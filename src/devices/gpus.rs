//! Docker's device requests (`HostConfig.DeviceRequests`): `--gpus` parsed as Docker parses it,
//! CDI `--device vendor/class=name` requests, and GPU requests made CDI names of the
//! `nvidia.com/gpu` kind (what `nvidia-ctk cdi generate` writes).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::cdi::{self, Registry};

/// The CDI kind GPU requests resolve to.
pub const GPU_KIND: &str = "nvidia.com/gpu";

/// The driver of a CDI device request (Docker 25+ writes CDI `--device` names so).
pub const CDI_DRIVER: &str = "cdi";

/// NVIDIA driver capabilities `--gpus capabilities=` accepts (besides `gpu`).
pub const NVIDIA_CAPABILITIES: &[&str] = &[
    "all", "compute", "compat32", "graphics", "utility", "video", "display",
];

/// Docker's `DeviceRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceRequest {
    /// "" (any GPU driver: nvidia), or "cdi" for CDI names.
    pub driver: String,
    /// -1 for all; 0 when device ids are given.
    pub count: i64,
    #[serde(rename = "DeviceIDs")]
    pub device_ids: Option<Vec<String>>,
    /// Alternatives (OR) of capability sets (AND); `[["gpu"]]` for `--gpus`.
    /// None (JSON null) for CDI requests, as Docker writes them.
    pub capabilities: Option<Vec<Vec<String>>>,
    pub options: Option<BTreeMap<String, String>>,
}

/// A `--gpus` value or GPU request that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("invalid --gpus {value:?}: {reason} (use all, a count, device=ID[,ID...], capabilities=CAP[,CAP...]; e.g. --gpus all or --gpus '\"device=0,1\"')")]
    Flag { value: String, reason: String },
    #[error("--gpus needs a CDI spec for {GPU_KIND} and none was found (CDI spec dirs searched: {}): as root, generate one with `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` (from the NVIDIA Container Toolkit), or point BURROW_CDI_SPEC_DIRS or burrow.toml's cdi_spec_dirs at a dir with one", cdi::dir_list(.dirs))]
    NoSpec { dirs: Vec<PathBuf> },
    #[error("--gpus {count}: the CDI spec has only {} GPU(s) ({})", .known.len(), .known.join(", "))]
    TooFew { count: i64, known: Vec<String> },
}

/// Splits a Docker csv value: commas separate fields except within double quotes.
fn csv_fields(s: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

impl FromStr for DeviceRequest {
    type Err = GpuError;

    /// Docker's `--gpus`: `all`, `N`, and csv fields `count=`, `device=`, `driver=`,
    /// `capabilities=`. A bare id after `device=` continues its list (`device=0,1` unquoted).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| GpuError::Flag {
            value: s.to_string(),
            reason,
        };
        let mut r = DeviceRequest::default();
        let mut caps: Vec<String> = Vec::new();
        let mut last_key = "";
        let count = |v: &str| -> Result<i64, GpuError> {
            match v {
                "all" => Ok(-1),
                n => match n.parse::<i64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(bad(format!("count {n:?} is not all or a positive number"))),
                },
            }
        };
        for field in csv_fields(s.trim()) {
            let field = field.trim();
            match field.split_once('=') {
                None if last_key == "device" && !field.is_empty() => r
                    .device_ids
                    .get_or_insert_with(Vec::new)
                    .push(field.to_string()),
                None if last_key == "capabilities" && !field.is_empty() => {
                    caps.push(field.to_string())
                }
                None => {
                    r.count = count(field)?;
                    last_key = "count";
                }
                Some((key, value)) => {
                    last_key = match key {
                        "count" => {
                            r.count = count(value)?;
                            "count"
                        }
                        "device" => {
                            let ids = r.device_ids.get_or_insert_with(Vec::new);
                            ids.extend(
                                value.split(',').filter(|v| !v.is_empty()).map(String::from),
                            );
                            "device"
                        }
                        "driver" => {
                            if !matches!(value, "" | "nvidia") {
                                return Err(bad(format!(
                                    "driver {value:?}: burrow gives NVIDIA GPUs only, through CDI"
                                )));
                            }
                            r.driver = value.to_string();
                            "driver"
                        }
                        "capabilities" => {
                            caps.extend(
                                value.split(',').filter(|v| !v.is_empty()).map(String::from),
                            );
                            "capabilities"
                        }
                        "options" => return Err(bad("driver options are not supported".into())),
                        other => return Err(bad(format!("unknown field {other:?}"))),
                    };
                }
            }
        }
        if let Some(unknown) = caps
            .iter()
            .find(|c| *c != "gpu" && !NVIDIA_CAPABILITIES.contains(&c.as_str()))
        {
            return Err(bad(format!(
                "unknown capability {unknown:?} (use {})",
                NVIDIA_CAPABILITIES.join(", ")
            )));
        }
        match &r.device_ids {
            Some(ids) if ids.is_empty() => return Err(bad("device= names no device".into())),
            Some(_) if r.count != 0 => return Err(bad("give a count or devices, not both".into())),
            None if r.count == 0 => return Err(bad("no count or devices".into())),
            _ => {}
        }
        if !caps.iter().any(|c| c == "gpu") {
            caps.push("gpu".into());
        }
        r.capabilities = Some(vec![caps]);
        r.options = Some(BTreeMap::new());
        Ok(r)
    }
}

impl DeviceRequest {
    /// A request as Compose writes one (`gpus:` entries, `deploy.resources.reservations.devices`):
    /// NVIDIA GPUs (driver "" or nvidia; `capabilities` must hold `gpu`; no count and no ids is
    /// all), or CDI devices (driver cdi, `device_ids` their fully-qualified names).
    pub fn compose(
        driver: &str,
        count: Option<i64>,
        device_ids: Option<Vec<String>>,
        capabilities: Vec<String>,
    ) -> Result<DeviceRequest, String> {
        if driver == CDI_DRIVER {
            let ids = device_ids.unwrap_or_default();
            if ids.is_empty() || count.is_some() {
                return Err("driver cdi takes device_ids (CDI names such as vendor.com/class=name) and no count".into());
            }
            if let Some(bad) = ids.iter().find(|n| !n.contains('/') || !n.contains('=')) {
                return Err(format!(
                    "device_ids: {bad:?} is not a CDI name (vendor.com/class=name)"
                ));
            }
            return Ok(DeviceRequest::cdi(ids));
        }
        if !matches!(driver, "" | "nvidia") {
            return Err(format!(
                "driver {driver:?}: burrow gives NVIDIA GPUs (through CDI) and CDI devices (driver cdi) only"
            ));
        }
        if !capabilities.iter().any(|c| c == "gpu") {
            return Err(format!(
                "capabilities {capabilities:?}: burrow gives GPUs only; ask for [gpu]"
            ));
        }
        if let Some(unknown) = capabilities
            .iter()
            .find(|c| *c != "gpu" && !NVIDIA_CAPABILITIES.contains(&c.as_str()))
        {
            return Err(format!(
                "unknown capability {unknown:?} (use gpu and {})",
                NVIDIA_CAPABILITIES.join(", ")
            ));
        }
        let count = match (&device_ids, count) {
            (Some(_), Some(_)) => return Err("give a count or device_ids, not both".into()),
            (Some(ids), None) if ids.is_empty() => return Err("device_ids names no device".into()),
            (Some(_), None) => 0,
            (None, Some(n)) if n == -1 || n > 0 => n,
            (None, Some(n)) => return Err(format!("count {n} is not all or a positive number")),
            (None, None) => -1,
        };
        Ok(DeviceRequest {
            driver: driver.to_string(),
            count,
            device_ids,
            capabilities: Some(vec![capabilities]),
            options: Some(BTreeMap::new()),
        })
    }

    /// A request for CDI devices by their fully-qualified names.
    pub fn cdi(names: Vec<String>) -> DeviceRequest {
        DeviceRequest {
            driver: CDI_DRIVER.into(),
            device_ids: Some(names),
            ..DeviceRequest::default()
        }
    }

    /// Whether this asks for GPUs (rather than CDI devices by name).
    pub fn is_gpu(&self) -> bool {
        self.driver != CDI_DRIVER
    }

    /// The NVIDIA driver capabilities asked for (without `gpu`), for NVIDIA_DRIVER_CAPABILITIES.
    pub fn driver_capabilities(&self) -> Vec<String> {
        self.capabilities
            .iter()
            .flatten()
            .flatten()
            .filter(|c| *c != "gpu")
            .cloned()
            .collect()
    }

    /// The CDI names this request stands for: a CDI request's own names; for GPUs, all
    /// (`nvidia.com/gpu=all`), the given ids, or the first N of the spec's GPUs (numbered
    /// names in number order, else the spec's order; never the `all` device).
    pub fn cdi_names(&self, registry: &Registry) -> Result<Vec<String>, GpuError> {
        if !self.is_gpu() {
            return Ok(self.device_ids.clone().unwrap_or_default());
        }
        let known = registry.devices_of_kind(GPU_KIND);
        if known.is_empty() {
            return Err(GpuError::NoSpec {
                dirs: registry.dirs().to_vec(),
            });
        }
        if let Some(ids) = &self.device_ids {
            return Ok(ids.iter().map(|id| format!("{GPU_KIND}={id}")).collect());
        }
        if self.count < 0 {
            return Ok(vec![format!("{GPU_KIND}=all")]);
        }
        let names: Vec<&str> = known
            .iter()
            .filter_map(|n| n.split_once('=').map(|(_, name)| name))
            .filter(|n| *n != "all")
            .collect();
        let mut numbered: Vec<(u64, &str)> = names
            .iter()
            .filter_map(|n| n.parse::<u64>().ok().map(|i| (i, *n)))
            .collect();
        numbered.sort();
        let ordered: Vec<&str> = if numbered.is_empty() {
            names
        } else {
            numbered.into_iter().map(|(_, n)| n).collect()
        };
        let count = usize::try_from(self.count).unwrap_or(usize::MAX);
        if ordered.len() < count {
            return Err(GpuError::TooFew {
                count: self.count,
                known: ordered.iter().map(|n| format!("{GPU_KIND}={n}")).collect(),
            });
        }
        Ok(ordered[..count]
            .iter()
            .map(|n| format!("{GPU_KIND}={n}"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpus(s: &str) -> DeviceRequest {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn compose_requests() {
        let gpu = || vec!["gpu".to_string()];
        let all = DeviceRequest::compose("nvidia", None, None, gpu()).unwrap();
        assert_eq!((all.count, all.driver.as_str()), (-1, "nvidia"));
        assert_eq!(
            DeviceRequest::compose("", Some(2), None, gpu())
                .unwrap()
                .count,
            2
        );
        let ids = DeviceRequest::compose("", None, Some(vec!["1".into()]), gpu()).unwrap();
        assert_eq!(
            (ids.count, ids.device_ids.unwrap()),
            (0, vec!["1".to_string()])
        );
        let cdi =
            DeviceRequest::compose("cdi", None, Some(vec!["vendor.com/dev=a".into()]), vec![])
                .unwrap();
        assert!(!cdi.is_gpu());
        for (driver, count, ids, caps) in [
            ("", None, None, vec!["tpu".to_string()]),
            ("amd", None, None, gpu()),
            ("", Some(1), Some(vec!["0".to_string()]), gpu()),
            ("", Some(0), None, gpu()),
            ("cdi", None, Some(vec!["plain".to_string()]), vec![]),
            ("cdi", None, None, vec![]),
        ] {
            assert!(
                DeviceRequest::compose(driver, count, ids, caps).is_err(),
                "{driver}"
            );
        }
    }

    #[test]
    fn gpus_parse_as_docker_does() {
        let all = gpus("all");
        assert_eq!((all.count, all.device_ids.clone()), (-1, None));
        assert_eq!(all.capabilities, Some(vec![vec!["gpu".to_string()]]));
        let json = serde_json::to_value(&all).unwrap();
        assert_eq!(json["Count"], -1);
        assert_eq!(json["DeviceIDs"], serde_json::Value::Null);
        assert_eq!(gpus("2").count, 2);
        assert_eq!(gpus("count=3").count, 3);
        assert_eq!(gpus("\"device=0,1\"").device_ids.unwrap(), ["0", "1"]);
        assert_eq!(gpus("device=0,1").device_ids.unwrap(), ["0", "1"]);
        assert_eq!(gpus("device=GPU-abc").device_ids.unwrap(), ["GPU-abc"]);
        let c = gpus("all,\"capabilities=compute,utility\"");
        assert_eq!(
            c.capabilities.clone().unwrap()[0],
            ["compute", "utility", "gpu"]
        );
        assert_eq!(c.driver_capabilities(), ["compute", "utility"]);
        for bad in [
            "",
            "0",
            "-1",
            "device=",
            "driver=amd,all",
            "all,options=x=y",
            "all,capabilities=warp",
            "2,device=1",
            "foo=1",
        ] {
            let e = bad.parse::<DeviceRequest>().unwrap_err().to_string();
            assert!(e.starts_with("invalid --gpus"), "{bad}: {e}");
        }
    }

    fn registry(devices: &[&str]) -> (tempfile::TempDir, Registry) {
        let d = tempfile::tempdir().unwrap();
        let list: Vec<String> = devices
            .iter()
            .map(|n| format!("{{\"name\":\"{n}\"}}"))
            .collect();
        let spec = format!(
            "{{\"cdiVersion\":\"0.6.0\",\"kind\":\"nvidia.com/gpu\",\"devices\":[{}]}}",
            list.join(",")
        );
        std::fs::write(d.path().join("nvidia.json"), spec).unwrap();
        let r = Registry::load(&[d.path().to_path_buf()]).unwrap();
        (d, r)
    }

    #[test]
    fn gpu_requests_become_cdi_names() {
        let (_d, r) = registry(&["1", "0", "10", "2", "all"]);
        assert_eq!(gpus("all").cdi_names(&r).unwrap(), ["nvidia.com/gpu=all"]);
        assert_eq!(
            gpus("device=1,2").cdi_names(&r).unwrap(),
            ["nvidia.com/gpu=1", "nvidia.com/gpu=2"]
        );
        assert_eq!(
            gpus("3").cdi_names(&r).unwrap(),
            ["nvidia.com/gpu=0", "nvidia.com/gpu=1", "nvidia.com/gpu=2"]
        );
        let e = gpus("5").cdi_names(&r).unwrap_err().to_string();
        assert!(e.contains("only 4 GPU"), "{e}");
        let cdi = DeviceRequest::cdi(vec!["a.com/b=c".into()]);
        let json = serde_json::to_value(&cdi).unwrap();
        assert!(
            json["Capabilities"].is_null() && json["Options"].is_null(),
            "{json}"
        );
        assert_eq!(cdi.cdi_names(&r).unwrap(), ["a.com/b=c"]);
    }

    #[test]
    fn no_gpu_spec_says_how_to_make_one() {
        let r = Registry::load(&["/no/such/cdi".into()]).unwrap();
        let e = gpus("all").cdi_names(&r).unwrap_err().to_string();
        assert!(
            e.contains("nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml")
                && e.contains("/no/such/cdi"),
            "{e}"
        );
    }
}
