//! Unit tests of the resolution rules against a temp runtime dir.

use std::path::{Path, PathBuf};

use super::*;

fn env(euid: u32, runtime_dir: Option<&Path>) -> UserEnv {
    UserEnv {
        euid,
        runtime_dir: runtime_dir.map(Path::to_path_buf),
        home: Some(PathBuf::from("/home/u")),
        config_home: Some(PathBuf::from("/home/u/.config")),
        data_home: Some(PathBuf::from("/home/u/.local/share")),
    }
}

fn globals() -> Globals {
    Globals::merge(RawGlobals::default(), FileConfig::default())
}

fn unreachable(_: &Path) -> Option<String> {
    Some("does not exist".to_owned())
}

fn reachable(_: &Path) -> Option<String> {
    None
}

fn with_launcher(pid: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("containerd-rootless")).unwrap();
    std::fs::write(dir.path().join("containerd-rootless/child_pid"), pid).unwrap();
    dir
}

#[test]
fn rootless_when_child_pid_exists() {
    let rd = with_launcher("4242\n");
    let ep = resolve_in(&globals(), &env(1000, Some(rd.path())), &unreachable).unwrap();
    assert_eq!(ep.mode, Mode::Rootless);
    assert_eq!(ep.socket, rd.path().join("containerd/containerd.sock"));
    let l = ep.launcher.unwrap();
    assert_eq!(l.child_pid, 4242);
    assert_eq!(l.api_socket, rd.path().join("containerd-rootless/api.sock"));
    assert_eq!(ep.namespace, "default");
    assert_eq!(ep.data_root, PathBuf::from("/home/u/.local/share/nerdctl"));
}

#[test]
fn root_is_rootful_even_with_a_launcher() {
    let rd = with_launcher("4242");
    let ep = resolve_in(&globals(), &env(0, Some(rd.path())), &unreachable).unwrap();
    assert_eq!(ep.mode, Mode::Rootful);
    assert_eq!(ep.socket, PathBuf::from(paths::ROOTFUL_SOCKET));
    assert!(ep.launcher.is_none());
    assert_eq!(ep.data_root, PathBuf::from("/var/lib/nerdctl"));
}

#[test]
fn user_falls_back_to_a_reachable_rootful_socket() {
    let rd = tempfile::tempdir().unwrap();
    let ep = resolve_in(&globals(), &env(1000, Some(rd.path())), &reachable).unwrap();
    assert_eq!(ep.mode, Mode::Rootful);
}

#[test]
fn nothing_reachable_names_every_socket_and_the_fix() {
    let rd = tempfile::tempdir().unwrap();
    let err = resolve_in(&globals(), &env(1000, Some(rd.path())), &unreachable)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            &rd.path()
                .join("containerd/containerd.sock")
                .display()
                .to_string()
        ),
        "{err}"
    );
    assert!(err.contains("/run/containerd/containerd.sock"), "{err}");
    assert!(err.contains("burrow setup install"), "{err}");
}

#[test]
fn unset_runtime_dir_is_explained() {
    // uid 4000000 has no /run/user dir, so there is no fallback.
    let err = resolve_in(&globals(), &env(4_000_000, None), &unreachable)
        .unwrap_err()
        .to_string();
    assert!(err.contains("XDG_RUNTIME_DIR is not set"), "{err}");
    assert!(err.contains("/run/user/4000000"), "{err}");
}

#[test]
fn bad_child_pid_is_an_error_naming_the_file() {
    let rd = with_launcher("garbage");
    let err = resolve_in(&globals(), &env(1000, Some(rd.path())), &unreachable).unwrap_err();
    assert!(err.to_string().contains("child_pid"), "{err}");
}

#[test]
fn explicit_address_wins() {
    let rd = with_launcher("7");
    let mut g = globals();
    g.address = Some(PathBuf::from("/tmp/other.sock"));
    let ep = resolve_in(&g, &env(1000, Some(rd.path())), &unreachable).unwrap();
    assert_eq!(ep.mode, Mode::Rootful);
    assert_eq!(ep.socket, PathBuf::from("/tmp/other.sock"));
    g.address = Some(rd.path().join("containerd/containerd.sock"));
    let ep = resolve_in(&g, &env(1000, Some(rd.path())), &unreachable).unwrap();
    assert_eq!(ep.mode, Mode::Rootless);
}

#[test]
fn namespace_is_checked() {
    let mut g = globals();
    g.namespace = "bad/ns".to_owned();
    assert!(matches!(
        resolve_in(&g, &env(0, None), &reachable),
        Err(ConnectError::BadNamespace(_))
    ));
    g.namespace = "k8s.io".to_owned();
    let ep = resolve_in(&g, &env(0, None), &reachable).unwrap();
    assert_eq!(ep.namespace, "k8s.io");
}

#[test]
fn flags_win_over_the_file() {
    let raw = RawGlobals {
        namespace: Some("flag".into()),
        ..Default::default()
    };
    let file = FileConfig {
        namespace: Some("file".into()),
        data_root: Some("/scratch".into()),
        snapshotter: Some("native".into()),
        ..Default::default()
    };
    let g = Globals::merge(raw, file);
    assert_eq!(g.namespace, "flag");
    assert_eq!(g.data_root, Some(PathBuf::from("/scratch")));
    assert_eq!(g.snapshotter, "native");
}

#[test]
fn namespace_names() {
    for ok in ["default", "k8s.io", "a-b_c", "moby"] {
        assert!(valid_namespace(ok), "{ok}");
    }
    for bad in ["", "-a", "a..b", "a/b", "a b"] {
        assert!(!valid_namespace(bad), "{bad}");
    }
}

#[test]
fn single_id_maps_are_recognised() {
    assert!(is_single_id_map("         0       1000          1\n"));
    assert!(!is_single_id_map(
        "         0       1000          1\n         1     100000      65536\n"
    ));
    assert!(!is_single_id_map("         0          0 4294967295\n"));
    assert!(!is_single_id_map(""));
}

#[test]
fn blocking_work_runs_on_either_runtime_and_without_one() {
    assert_eq!(super::blocking(|| 1), 1);
    assert_eq!(
        super::runtime().block_on(async { super::blocking(|| 2) }),
        2
    );
    let rt = super::service_runtime();
    assert_eq!(rt.block_on(async { super::blocking(|| 3) }), 3);
    let spawned = rt.block_on(async { tokio::spawn(async { super::blocking(|| 4) }).await });
    assert_eq!(spawned.unwrap(), 4);
}
