//! containerd's image-side services over gRPC: content (resumable writes, reads, labels), leases,
//! image records, snapshots and the diff service, all in one namespace and optionally under a lease.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::{
    snapshots::{
        CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
    },
    AbortRequest, ApplyRequest, CreateImageRequest, CreateRequest as LeaseCreateRequest,
    DeleteImageRequest, DeleteRequest as LeaseDeleteRequest, GetImageRequest, Image, InfoRequest,
    ListImagesRequest, ReadContentRequest, UpdateImageRequest,
    UpdateRequest as ContentUpdateRequest, WriteAction, WriteContentRequest, WriteContentResponse,
};
use containerd_client::types::{Descriptor as PbDescriptor, Mount};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};

use super::manifest::Descriptor;
use super::time;
use crate::client::{self, Client, RpcResult};
use crate::connection::Endpoint;

pub use containerd_client::services::v1::Info as ContentInfo;

/// Bytes per content write message (containerd accepts up to 16 MiB per message).
const CHUNK: usize = 1 << 20;

/// How long a lease keeps an unfinished pull or load from garbage collection if burrow dies.
const LEASE_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// A containerd call failed, or content did not match its descriptor.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Containerd(#[from] client::Error),
    #[error("digest mismatch for {what}: expected {expected}, got {got} (the source is corrupt or was changed; nothing was committed)")]
    DigestMismatch {
        what: String,
        expected: String,
        got: String,
    },
    #[error("size mismatch for {what}: expected {expected} bytes, got {got}")]
    SizeMismatch {
        what: String,
        expected: i64,
        got: i64,
    },
    #[error("containerd closed the content write stream for {0} early")]
    StreamClosed(String),
}

impl StoreError {
    /// containerd's status code, for a call containerd answered.
    pub fn code(&self) -> Option<Code> {
        match self {
            StoreError::Containerd(e) => e.code(),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(Code::NotFound)
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// A handle on one containerd namespace's image-side services.
#[derive(Clone)]
pub struct Store {
    /// The namespace's client, under this store's lease when it has one.
    containerd: Client,
    /// Snapshotter layers are unpacked into.
    pub snapshotter: String,
    /// containerd gives every layer file to the one mapped id as it unpacks (a single-id
    /// rootless user, see [`super::owners`]): unpacked layers then differ from the image's
    /// diff ids by design.
    pub squashed_owners: bool,
    /// The ingests opened through this store (under its lease), for [`Store::cancel`].
    opened: Arc<Mutex<Vec<String>>>,
    /// The rootless launcher's child (whose mount namespace holds the shared store's mounts).
    pub launcher_pid: Option<i32>,
}

impl Store {
    pub fn new(containerd: Client, snapshotter: &str) -> Store {
        Store {
            containerd,
            snapshotter: snapshotter.to_owned(),
            squashed_owners: false,
            opened: Arc::default(),
            launcher_pid: None,
        }
    }

    /// A store in the endpoint's snapshotter, owners squashed when its launcher maps one id.
    pub fn for_endpoint(containerd: Client, ep: &Endpoint) -> Store {
        let mut store = Store::new(containerd, &ep.snapshotter);
        store.squashed_owners = ep.launcher.as_ref().is_some_and(|l| l.single_id());
        store.launcher_pid = ep.launcher.as_ref().map(|l| l.child_pid);
        store
    }

    /// The client this store's calls go through (under its lease, if any), for the services
    /// it does not wrap.
    pub fn containerd(&self) -> &Client {
        &self.containerd
    }

    /// Creates a lease (expiring in a day) and returns a store whose calls run under it.
    pub async fn with_lease(&self, purpose: &str) -> Result<Store> {
        let id = format!(
            "burrow-{purpose}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        );
        let expire = time::rfc3339(SystemTime::now() + LEASE_EXPIRY);
        let labels = HashMap::from([("containerd.io/gc.expire".to_owned(), expire)]);
        self.containerd
            .leases()
            .create(LeaseCreateRequest {
                id: id.clone(),
                labels,
            })
            .await
            .op("lease create", &id)?;
        Ok(Store {
            containerd: self.containerd.with_lease(&id)?,
            opened: Arc::default(),
            ..self.clone()
        })
    }

    /// Undoes an unfinished transfer under this store's lease: drops the ingests it opened
    /// (committed ones are not touched) and ends the lease at once, so containerd collects
    /// what no image references. Nothing half-written stays behind.
    pub async fn cancel(&self) {
        let opened = self.opened.lock().map(|o| o.clone()).unwrap_or_default();
        for r in &opened {
            self.abort(r).await;
        }
        let Some(id) = self.containerd.lease() else {
            return;
        };
        let req = LeaseDeleteRequest {
            id: id.to_owned(),
            sync: true,
        };
        if let Err(err) = self.containerd.without_lease().leases().delete(req).await {
            tracing::warn!(
                ?err,
                lease = id,
                "could not end the lease of a cancelled transfer (it expires in a day)"
            );
        }
    }

    /// Ends this store's lease (what it protected must be referenced by an image by now).
    pub async fn release(&self) -> Result<()> {
        let Some(id) = self.containerd.lease() else {
            return Ok(());
        };
        self.containerd
            .without_lease()
            .leases()
            .delete(LeaseDeleteRequest {
                id: id.to_owned(),
                sync: false,
            })
            .await
            .op("lease delete", id)?;
        Ok(())
    }

    // ---- content ----

    /// The content's info, or None when the store does not have it.
    pub async fn info(&self, digest: &str) -> Result<Option<ContentInfo>> {
        let resp = self
            .containerd
            .content()
            .info(InfoRequest {
                digest: digest.to_owned(),
            })
            .await
            .optional_op("content info", digest)?;
        Ok(resp.and_then(|r| r.into_inner().info))
    }

    /// Reads a whole blob (for manifests and configs).
    pub async fn read(&self, digest: &str) -> Result<Vec<u8>> {
        self.read_stream(digest, 0, 0, Vec::new()).await
    }

    /// Reads `size` bytes of a blob from `offset` (large blobs are read in such pieces).
    pub async fn read_range(&self, digest: &str, offset: i64, size: i64) -> Result<Vec<u8>> {
        let out = Vec::with_capacity(size.max(0) as usize);
        self.read_stream(digest, offset, size, out).await
    }

    /// Appends what a content read of `size` bytes at `offset` streams back (0: to the end).
    async fn read_stream(
        &self,
        digest: &str,
        offset: i64,
        size: i64,
        mut out: Vec<u8>,
    ) -> Result<Vec<u8>> {
        let mut stream = self
            .containerd
            .content()
            .read(ReadContentRequest {
                digest: digest.to_owned(),
                offset,
                size,
            })
            .await
            .op("content read", digest)?
            .into_inner();
        while let Some(r) = stream.message().await.op("content read", digest)? {
            out.extend_from_slice(&r.data);
        }
        Ok(out)
    }

    /// Reads a blob and checks it against its descriptor.
    pub async fn read_verified(&self, desc: &Descriptor) -> Result<Vec<u8>> {
        let data = self.read(&desc.digest).await?;
        let got = super::manifest::sha256(&data);
        if got != desc.digest {
            return Err(StoreError::DigestMismatch {
                what: "content".into(),
                expected: desc.digest.clone(),
                got,
            });
        }
        Ok(data)
    }

    /// Sets labels on a blob (existing other labels stay).
    pub async fn set_labels(&self, digest: &str, labels: HashMap<String, String>) -> Result<()> {
        if labels.is_empty() {
            return Ok(());
        }
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        self.containerd
            .content()
            .update(ContentUpdateRequest {
                info: Some(ContentInfo {
                    digest: digest.to_owned(),
                    labels,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths }),
            })
            .await
            .op("content update", digest)?;
        Ok(())
    }

    /// Opens (or resumes) an ingest for `desc`; None when the store already has the blob.
    ///
    /// When another writer (a concurrent pull of the same blob) holds the ingest, this waits for
    /// it, up to an hour; its blob then usually exists and None comes back.
    pub async fn ingest(&self, ingest_ref: &str, desc: &Descriptor) -> Result<Option<Ingest>> {
        let mut waited = Duration::ZERO;
        loop {
            match self.try_ingest(ingest_ref, desc).await {
                Err(StoreError::Containerd(e))
                    if e.code() == Some(Code::Unavailable)
                        && e.message().is_some_and(|m| m.contains("locked"))
                        && waited < Duration::from_secs(3600) =>
                {
                    tracing::debug!(ingest_ref, "another writer holds the ingest; waiting");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    waited += Duration::from_millis(250);
                }
                other => return other,
            }
        }
    }

    async fn try_ingest(&self, ingest_ref: &str, desc: &Descriptor) -> Result<Option<Ingest>> {
        let (tx, rx) = mpsc::channel(4);
        let stat = WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: ingest_ref.to_owned(),
            total: desc.size,
            expected: desc.digest.clone(),
            ..Default::default()
        };
        // containerd reads the first message before it answers, so queue it before the call.
        let _ = tx.send(stat).await;
        let what = format!("{} ({ingest_ref})", desc.digest);
        let resp = self
            .containerd
            .content()
            .write(ReceiverStream::new(rx))
            .await
            .op("content write", &what);
        let mut stream = match resp {
            Ok(r) => r.into_inner(),
            Err(e) if e.is_already_exists() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let first = match stream.message().await.op("content write", &what) {
            Ok(Some(m)) => m,
            Ok(None) => return Err(StoreError::StreamClosed(what)),
            Err(e) if e.is_already_exists() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if let Ok(mut o) = self.opened.lock() {
            o.push(ingest_ref.to_owned());
        }
        Ok(Some(Ingest {
            tx,
            stream,
            what,
            ingest_ref: ingest_ref.to_owned(),
            offset: first.offset,
            total: desc.size,
            expected: desc.digest.clone(),
        }))
    }

    /// Drops an unfinished ingest (after a digest mismatch, so a retry starts clean).
    pub async fn abort(&self, ingest_ref: &str) {
        let req = AbortRequest {
            r#ref: ingest_ref.to_owned(),
        };
        if let Err(err) = self.containerd.content().abort(req).await {
            tracing::debug!(?err, ingest_ref, "content abort");
        }
    }

    /// Writes a blob held in memory (manifests, configs, indexes); a no-op when present.
    pub async fn put(
        &self,
        desc: &Descriptor,
        data: &[u8],
        labels: HashMap<String, String>,
    ) -> Result<()> {
        let got = super::manifest::sha256(data);
        if got != desc.digest {
            return Err(StoreError::DigestMismatch {
                what: desc.media_type.clone(),
                expected: desc.digest.clone(),
                got,
            });
        }
        let ingest_ref = super::manifest::ingest_ref(desc);
        match self.ingest(&ingest_ref, desc).await? {
            None => self.set_labels(&desc.digest, labels).await,
            Some(mut w) => {
                // A write at offset 0 truncates what an earlier attempt left.
                w.offset = 0;
                for chunk in data.chunks(CHUNK) {
                    w.write(chunk.to_vec()).await?;
                }
                w.commit(labels).await
            }
        }
    }

    // ---- images ----

    pub async fn image(&self, name: &str) -> Result<Option<Image>> {
        let resp = self
            .containerd
            .images()
            .get(GetImageRequest {
                name: name.to_owned(),
            })
            .await
            .optional_op("image get", name)?;
        Ok(resp.and_then(|r| r.into_inner().image))
    }

    pub async fn images(&self) -> Result<Vec<Image>> {
        Ok(self
            .containerd
            .images()
            .list(ListImagesRequest { filters: vec![] })
            .await
            .op("image list", "")?
            .into_inner()
            .images)
    }

    /// Creates the image record, or points an existing one at the new target.
    pub async fn put_image(
        &self,
        name: &str,
        target: &Descriptor,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        let now = time::timestamp(SystemTime::now());
        let image = Image {
            name: name.to_owned(),
            labels,
            target: Some(to_pb(target)),
            created_at: Some(now),
            updated_at: Some(now),
        };
        let created = self
            .containerd
            .images()
            .create(CreateImageRequest {
                image: Some(image.clone()),
                source_date_epoch: None,
            })
            .await
            .op("image create", name);
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.is_already_exists() => {
                self.containerd
                    .images()
                    .update(UpdateImageRequest {
                        image: Some(image),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["target".into(), "labels".into()],
                        }),
                        source_date_epoch: None,
                    })
                    .await
                    .op("image update", name)?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a record; `sync` waits for garbage collection of what it alone held.
    pub async fn delete_image(&self, name: &str, sync: bool) -> Result<()> {
        self.containerd
            .images()
            .delete(DeleteImageRequest {
                name: name.to_owned(),
                sync,
                target: None,
            })
            .await
            .op("image delete", name)?;
        Ok(())
    }

    // ---- snapshots and diff ----

    /// Whether a committed snapshot with this name exists.
    pub async fn snapshot_exists(&self, key: &str) -> Result<bool> {
        let stat = self
            .containerd
            .snapshots()
            .stat(StatSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_owned(),
            })
            .await
            .optional_op("snapshot stat", key)?;
        Ok(stat.is_some())
    }

    pub async fn prepare(&self, key: &str, parent: &str) -> Result<Vec<Mount>> {
        Ok(self
            .containerd
            .snapshots()
            .prepare(PrepareSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_owned(),
                parent: parent.to_owned(),
                labels: HashMap::new(),
            })
            .await
            .op("snapshot prepare", key)?
            .into_inner()
            .mounts)
    }

    pub async fn commit_snapshot(&self, name: &str, key: &str) -> Result<()> {
        self.containerd
            .snapshots()
            .commit(CommitSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                name: name.to_owned(),
                key: key.to_owned(),
                labels: HashMap::new(),
            })
            .await
            .op("snapshot commit", name)?;
        Ok(())
    }

    pub async fn remove_snapshot(&self, key: &str) -> Result<()> {
        self.containerd
            .snapshots()
            .remove(RemoveSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_owned(),
            })
            .await
            .optional_op("snapshot remove", key)?;
        Ok(())
    }

    /// Applies a layer blob onto prepared mounts; returns the digest of the uncompressed tar.
    pub async fn apply(&self, layer: &Descriptor, mounts: Vec<Mount>) -> Result<String> {
        let applied = self
            .containerd
            .diff()
            .apply(ApplyRequest {
                diff: Some(to_pb(layer)),
                mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            })
            .await
            .op("diff apply", &layer.digest)?
            .into_inner()
            .applied;
        Ok(applied.map(|d| d.digest).unwrap_or_default())
    }
}

/// An open content write: data goes at `offset`, then `commit` checks size and digest.
pub struct Ingest {
    tx: mpsc::Sender<WriteContentRequest>,
    stream: Streaming<WriteContentResponse>,
    what: String,
    pub ingest_ref: String,
    /// Bytes containerd already holds for this ingest (a resumed write starts here).
    pub offset: i64,
    pub total: i64,
    pub expected: String,
}

impl Ingest {
    async fn round_trip(&mut self, msg: WriteContentRequest) -> Result<WriteContentResponse> {
        if self.tx.send(msg).await.is_err() {
            return Err(StoreError::StreamClosed(self.what.clone()));
        }
        match self
            .stream
            .message()
            .await
            .op("content write", &self.what)?
        {
            Some(m) => Ok(m),
            None => Err(StoreError::StreamClosed(self.what.clone())),
        }
    }

    /// Appends data at the current offset.
    pub async fn write(&mut self, data: Vec<u8>) -> Result<()> {
        let offset = self.offset;
        let len = data.len() as i64;
        let msg = WriteContentRequest {
            action: WriteAction::Write as i32,
            r#ref: self.ingest_ref.clone(),
            total: self.total,
            expected: self.expected.clone(),
            offset,
            data,
            labels: HashMap::new(),
        };
        let r = self.round_trip(msg).await?;
        tracing::debug!(
            sent = len,
            at = offset,
            now = r.offset,
            action = r.action,
            "content write"
        );
        self.offset = r.offset.max(offset + len);
        Ok(())
    }

    /// Commits with the expected size and digest; containerd verifies both.
    pub async fn commit(mut self, labels: HashMap<String, String>) -> Result<()> {
        let msg = WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: self.ingest_ref.clone(),
            total: self.total,
            expected: self.expected.clone(),
            // containerd truncates the ingest when a write or commit says offset 0.
            offset: self.offset,
            data: vec![],
            labels,
        };
        let e = match self.round_trip(msg).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Containerd(e)) => e,
            Err(e) => return Err(e),
        };
        let message = e.message().unwrap_or_default();
        if e.is_already_exists() {
            Ok(())
        } else if message.contains("unexpected commit digest") {
            Err(StoreError::DigestMismatch {
                what: self.what.clone(),
                expected: self.expected.clone(),
                got: message.to_owned(),
            })
        } else if message.contains("unexpected commit size") {
            Err(StoreError::SizeMismatch {
                what: self.what.clone(),
                expected: self.total,
                got: self.offset,
            })
        } else {
            Err(e.into())
        }
    }
}

/// Our descriptor as containerd's protobuf type.
pub fn to_pb(d: &Descriptor) -> PbDescriptor {
    PbDescriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size,
        annotations: d
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// containerd's protobuf descriptor as ours.
pub fn from_pb(d: &PbDescriptor) -> Descriptor {
    Descriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size,
        platform: None,
        annotations: d
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}
