//! The client's namespace and lease metadata, and its error's messages and codes.

use tonic::service::Interceptor;
use tonic::{Code, Status};

use super::*;

/// A client on a channel that never connects (enough to look at what requests carry).
fn client(namespace: &str) -> Result<Client, Error> {
    let rt = crate::connection::runtime();
    let _in_runtime = rt.enter();
    let channel = tonic::transport::Endpoint::from_static("http://[::]").connect_lazy();
    Client::new(channel, namespace)
}

fn sent(c: &Client) -> tonic::metadata::MetadataMap {
    let mut meta = c.meta.clone();
    let req = meta.call(tonic::Request::new(())).unwrap();
    req.metadata().clone()
}

#[test]
fn every_request_carries_the_namespace() {
    let c = client("k8s.io").unwrap();
    assert_eq!(c.namespace(), "k8s.io");
    let md = sent(&c);
    assert_eq!(md.get("containerd-namespace").unwrap(), "k8s.io");
    assert!(md.get("containerd-lease").is_none());
}

#[test]
fn a_lease_is_added_and_dropped() {
    let c = client("default").unwrap();
    let leased = c.with_lease("burrow-pull-1").unwrap();
    assert_eq!(leased.lease(), Some("burrow-pull-1"));
    let md = sent(&leased);
    assert_eq!(md.get("containerd-lease").unwrap(), "burrow-pull-1");
    assert_eq!(md.get("containerd-namespace").unwrap(), "default");
    assert!(sent(&leased.without_lease())
        .get("containerd-lease")
        .is_none());
    assert!(c.lease().is_none());
}

#[test]
fn names_that_are_not_metadata_are_errors() {
    assert!(matches!(client("bad\nns"), Err(Error::Namespace(_))));
    let c = client("default").unwrap();
    assert!(matches!(c.with_lease("a\nlease"), Err(Error::Lease(_))));
}

#[test]
fn rpc_errors_name_the_call_and_keep_the_status() {
    let e = Error::rpc(
        "content read",
        "sha256:abc",
        Status::not_found("blob not found"),
    );
    assert_eq!(
        e.to_string(),
        "containerd content read sha256:abc: blob not found"
    );
    assert!(e.is_not_found());
    assert_eq!(e.code(), Some(Code::NotFound));
    assert_eq!(e.message(), Some("blob not found"));
    let full = Error::rpc(
        "content write",
        "x",
        Status::unknown("write: no space left on device"),
    );
    assert!(full.to_string().contains("disk is full"), "{full}");
    assert!(!full.is_not_found());
    assert_eq!(Error::Namespace("x".into()).code(), None);
}

#[test]
fn absent_objects_are_none() {
    let absent: Result<(), Status> = Err(Status::not_found("no such task"));
    assert!(absent.optional_op("task get", "for x").unwrap().is_none());
    let present: Result<u32, Status> = Ok(7);
    assert_eq!(present.optional_op("task get", "for x").unwrap(), Some(7));
    let failed: Result<(), Status> = Err(Status::unavailable("busy"));
    let e = failed.optional_op("task get", "for x").unwrap_err();
    assert_eq!(e.to_string(), "containerd task get for x: busy");
}
