//! Turns a Docker seccomp profile into the OCI `LinuxSeccomp` for one container: picks the
//! architectures of this machine and keeps the rules whose arch, capability and kernel
//! conditions hold for that container.

use std::collections::BTreeSet;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSyscall,
    LinuxSyscallBuilder,
};

use crate::profile::{Filter, Profile};

/// What the conditions of a profile are evaluated against.
#[derive(Debug, Clone)]
pub struct Context {
    /// Docker/Go architecture name of the machine (amd64, arm64, ...).
    pub arch: String,
    /// The seccomp architecture of the machine, matched against `archMap`.
    pub native: Option<Arch>,
    /// The container's bounding capabilities, `CAP_` prefixed.
    pub caps: BTreeSet<String>,
    /// Running kernel (major, minor); `None` treats every `minKernel` rule as applying.
    pub kernel: Option<(u32, u32)>,
}

impl Context {
    /// This machine's arch and kernel with the given capabilities.
    pub fn current<I: IntoIterator<Item = S>, S: Into<String>>(caps: I) -> Context {
        let (arch, native) = host_arch();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|s| parse_kernel(&s));
        Context {
            arch: arch.to_string(),
            native,
            caps: caps.into_iter().map(Into::into).collect(),
            kernel,
        }
    }
}

/// The Go architecture name and seccomp arch of the machine this was built for.
pub fn host_arch() -> (&'static str, Option<Arch>) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", Some(Arch::ScmpArchX86_64)),
        "x86" => ("x86", Some(Arch::ScmpArchX86)),
        "aarch64" => ("arm64", Some(Arch::ScmpArchAarch64)),
        "arm" => ("arm", Some(Arch::ScmpArchArm)),
        "s390x" => ("s390x", Some(Arch::ScmpArchS390x)),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", Some(Arch::ScmpArchPpc64le)),
        "riscv64" => ("riscv64", Some(Arch::ScmpArchRiscv64)),
        other => (other, None),
    }
}

/// "6.18.0-1-amd64" → (6, 18).
pub fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The OCI seccomp section for a container, from `profile` under `ctx`.
pub fn to_oci(profile: &Profile, ctx: &Context) -> LinuxSeccomp {
    let mut architectures = Vec::new();
    if profile.arch_map.is_empty() {
        architectures.extend(profile.architectures.iter().copied());
    } else if let Some(native) = ctx.native {
        for entry in profile.arch_map.iter().filter(|m| m.architecture == native) {
            architectures.push(entry.architecture);
            architectures.extend(entry.sub_architectures.iter().copied());
        }
    }

    let syscalls: Vec<LinuxSyscall> = profile
        .syscalls
        .iter()
        .filter(|rule| applies(&rule.includes, &rule.excludes, ctx))
        .map(|rule| {
            let args: Vec<LinuxSeccompArg> = rule
                .args
                .iter()
                .map(|a| {
                    LinuxSeccompArgBuilder::default()
                        .index(a.index)
                        .value(a.value)
                        .value_two(a.value_two)
                        .op(a.op)
                        .build()
                        .expect("all seccomp arg fields set")
                })
                .collect();
            let mut b = LinuxSyscallBuilder::default()
                .names(rule.syscall_names())
                .action(rule.action);
            if let Some(errno) = rule.errno_ret {
                b = b.errno_ret(errno);
            }
            if !args.is_empty() {
                b = b.args(args);
            }
            b.build().expect("all seccomp syscall fields set")
        })
        .collect();

    let mut b = LinuxSeccompBuilder::default()
        .default_action(profile.default_action)
        .syscalls(syscalls);
    if let Some(errno) = profile.default_errno_ret {
        b = b.default_errno_ret(errno);
    }
    if !architectures.is_empty() {
        b = b.architectures(architectures);
    }
    b.build().expect("all seccomp fields set")
}

fn applies(includes: &Filter, excludes: &Filter, ctx: &Context) -> bool {
    if !includes.arches.is_empty() && !includes.arches.contains(&ctx.arch) {
        return false;
    }
    if excludes.arches.contains(&ctx.arch) {
        return false;
    }
    if !includes.caps.iter().all(|c| ctx.caps.contains(c)) {
        return false;
    }
    if excludes.caps.iter().any(|c| ctx.caps.contains(c)) {
        return false;
    }
    if let (Some(min), Some(running)) = (includes.min_kernel.as_deref(), ctx.kernel) {
        if let Some(min) = parse_kernel(min) {
            if running < min {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompOperator};

    use super::*;
    use crate::profile::default_profile;

    fn ctx(arch: &str, caps: &[&str]) -> Context {
        Context {
            arch: arch.into(),
            native: Some(if arch == "arm64" {
                Arch::ScmpArchAarch64
            } else {
                Arch::ScmpArchX86_64
            }),
            caps: caps.iter().map(|c| c.to_string()).collect(),
            kernel: Some((6, 18)),
        }
    }

    /// The rules (action, args) that mention `name`.
    fn rules_for(s: &LinuxSeccomp, name: &str) -> Vec<LinuxSyscall> {
        s.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .cloned()
            .collect()
    }

    #[test]
    fn amd64_default_caps() {
        let s = to_oci(
            &default_profile(),
            &ctx("amd64", &["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]),
        );
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        assert_eq!(
            s.architectures().as_ref().unwrap(),
            &vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        // No CAP_SYS_ADMIN: mount is not allowed at all, clone only without namespace flags.
        assert!(rules_for(&s, "mount").is_empty());
        let clone = rules_for(&s, "clone");
        assert_eq!(clone.len(), 1);
        let arg = clone[0].args().as_ref().unwrap()[0];
        assert_eq!(
            (arg.index(), arg.value(), arg.op()),
            (0, 0x7E02_0000, LinuxSeccompOperator::ScmpCmpMaskedEq)
        );
        let clone3 = rules_for(&s, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
        // socket: every family but AF_VSOCK.
        let socket = rules_for(&s, "socket");
        let arg = socket[0].args().as_ref().unwrap()[0];
        assert_eq!(
            (arg.index(), arg.value(), arg.op()),
            (0, 40, LinuxSeccompOperator::ScmpCmpNe)
        );
        assert_eq!(rules_for(&s, "personality").len(), 5);
        assert_eq!(rules_for(&s, "arch_prctl").len(), 1);
        assert!(rules_for(&s, "arm_fadvise64_64").is_empty());
        // ptrace allowed from 4.8 on without CAP_SYS_PTRACE.
        assert_eq!(rules_for(&s, "ptrace").len(), 1);
    }

    #[test]
    fn sys_admin_gets_mount_and_unfiltered_clone() {
        let s = to_oci(&default_profile(), &ctx("amd64", &["CAP_SYS_ADMIN"]));
        assert_eq!(rules_for(&s, "mount").len(), 1);
        let clone = rules_for(&s, "clone");
        assert_eq!(clone.len(), 1);
        assert!(clone[0].args().is_none());
        assert_eq!(
            rules_for(&s, "clone3")[0].action(),
            LinuxSeccompAction::ScmpActAllow
        );
    }

    #[test]
    fn old_kernel_and_other_arch() {
        let mut c = ctx("arm64", &[]);
        c.kernel = Some((4, 4));
        let s = to_oci(&default_profile(), &c);
        assert!(rules_for(&s, "ptrace").is_empty());
        assert_eq!(rules_for(&s, "arm_fadvise64_64").len(), 1);
        assert!(rules_for(&s, "arch_prctl").is_empty());
        assert_eq!(
            s.architectures().as_ref().unwrap(),
            &vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
        );
    }

    #[test]
    fn oci_json_names() {
        let s = to_oci(&default_profile(), &ctx("amd64", &[]));
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.contains("\"defaultAction\":\"SCMP_ACT_ERRNO\""),
            "{json}"
        );
        assert!(json.contains("\"SCMP_ARCH_X86_64\""));
        assert!(json.contains("\"SCMP_CMP_MASKED_EQ\""));
    }

    #[test]
    fn kernel_release_parsing() {
        assert_eq!(parse_kernel("6.18.0-1-amd64\n"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("x"), None);
    }
}
