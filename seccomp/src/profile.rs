//! The Docker seccomp profile format (what `--security-opt seccomp=FILE` accepts) and the
//! embedded default profile.

use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompOperator};
use serde::{Deserialize, Serialize};

/// Docker's default semantics: EPERM for anything not allowed, an allowlist, argument filters
/// for `clone`, `personality` and `socket`, and syscalls conditioned on capabilities.
pub const DEFAULT_PROFILE_JSON: &str = include_str!("../default.json");

/// A profile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("seccomp profile is not valid Docker seccomp JSON: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("seccomp profile rule {index} has no syscall names (set \"names\")")]
    NoNames { index: usize },
}

/// A whole profile, as in Docker's `profiles/seccomp` JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: LinuxSeccompAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Used only when `archMap` is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<Arch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

/// A native architecture and the ones its kernel also runs (e.g. x86 and x32 on x86_64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: Arch,
    #[serde(default)]
    pub sub_architectures: Vec<Arch>,
}

/// One rule: these syscalls get this action, if the conditions hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Old single-name form, still accepted by Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub action: LinuxSeccompAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub includes: Filter,
    #[serde(default)]
    pub excludes: Filter,
}

/// An argument comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: usize,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: LinuxSeccompOperator,
}

/// Conditions: `includes` must all hold, any one of `excludes` drops the rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Docker/Go architecture names: amd64, arm64, x86, x32, arm, s390x, ppc64le, riscv64 ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    /// "major.minor": the rule applies from this kernel on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

impl Profile {
    /// Parses a profile in Docker's format.
    pub fn parse(json: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = serde_json::from_str(json)?;
        for (index, rule) in profile.syscalls.iter().enumerate() {
            if rule.names.is_empty() && rule.name.is_none() {
                return Err(ProfileError::NoNames { index });
            }
        }
        Ok(profile)
    }
}

impl Rule {
    /// The syscall names of the rule, whichever form the file used.
    pub fn syscall_names(&self) -> Vec<String> {
        let mut names = self.names.clone();
        if let Some(name) = &self.name {
            names.push(name.clone());
        }
        names
    }
}

/// The embedded default profile.
pub fn default_profile() -> Profile {
    // The file is ours and tested below; a parse failure is a build defect, not a runtime one.
    Profile::parse(DEFAULT_PROFILE_JSON).expect("embedded seccomp/default.json parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_parses_with_docker_defaults() {
        let p = default_profile();
        assert_eq!(p.default_action, LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret, Some(1));
        assert!(p
            .arch_map
            .iter()
            .any(|m| m.architecture == Arch::ScmpArchX86_64
                && m.sub_architectures.contains(&Arch::ScmpArchX86)));
        let allowed: Vec<String> = p.syscalls[0].syscall_names();
        for name in ["read", "write", "execve", "exit_group", "openat", "futex"] {
            assert!(
                allowed.iter().any(|n| n == name),
                "{name} not in the allowlist"
            );
        }
        for name in [
            "mount",
            "keyctl",
            "kexec_load",
            "userfaultfd",
            "socket",
            "clone",
        ] {
            assert!(
                !allowed.iter().any(|n| n == name),
                "{name} must not be unconditional"
            );
        }
    }

    #[test]
    fn rejects_rule_without_names_and_garbage() {
        let err = Profile::parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("rule 0"), "{err}");
        assert!(Profile::parse("{").is_err());
        assert!(Profile::parse(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).is_err());
    }

    #[test]
    fn accepts_singular_name_form() {
        let p = Profile::parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
                "syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":13,
                "args":[{"index":1,"value":448,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        )
        .unwrap();
        assert_eq!(p.syscalls[0].syscall_names(), vec!["mkdir".to_string()]);
        assert_eq!(
            p.syscalls[0].args[0].op,
            LinuxSeccompOperator::ScmpCmpMaskedEq
        );
        assert_eq!(p.architectures, vec![Arch::ScmpArchX86_64]);
    }
}
