//! containerd's image-side services over gRPC: content (resumable writes, reads, labels), leases,
//! image records, snapshots and the diff service, all in one namespace and optionally under a lease.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::{
    content_client::ContentClient,
    diff_client::DiffClient,
    images_client::ImagesClient,
    leases_client::LeasesClient,
    snapshots::{
        snapshots_client::SnapshotsClient, CommitSnapshotRequest, PrepareSnapshotRequest,
        RemoveSnapshotRequest, StatSnapshotRequest,
    },
    AbortRequest, ApplyRequest, CreateImageRequest, CreateRequest as LeaseCreateRequest,
    DeleteImageRequest, DeleteRequest as LeaseDeleteRequest, GetImageRequest, Image, InfoRequest,
    ListImagesRequest, ReadContentRequest, UpdateImageRequest,
    UpdateRequest as ContentUpdateRequest, WriteAction, WriteContentRequest, WriteContentResponse,
};
use containerd_client::types::{Descriptor as PbDescriptor, Mount};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Request, Status, Streaming};

use super::manifest::Descriptor;
use super::time;

pub use containerd_client::services::v1::Info as ContentInfo;

/// Bytes per content write message (containerd accepts up to 16 MiB per message).
const CHUNK: usize = 1 << 20;

/// How long a lease keeps an unfinished pull or load from garbage collection if burrow dies.
const LEASE_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// A containerd call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("containerd {op} {what}: {message}{}", space_hint(.message))]
    Rpc {
        op: &'static str,
        what: String,
        message: String,
        code: Code,
    },
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
    pub fn rpc(op: &'static str, what: impl Into<String>, s: Status) -> StoreError {
        StoreError::Rpc {
            op,
            what: what.into(),
            message: s.message().to_owned(),
            code: s.code(),
        }
    }

    pub fn code(&self) -> Option<Code> {
        match self {
            StoreError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(Code::NotFound)
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// What to do when containerd's disk is full.
fn space_hint(message: &str) -> &'static str {
    if message.contains("no space left on device") {
        " (containerd's disk is full: free space there, e.g. with `burrow image prune -a`, then run the command again; what was written so far is kept for it)"
    } else {
        ""
    }
}

/// A handle on one containerd namespace's image-side services.
#[derive(Clone)]
pub struct Store {
    channel: Channel,
    namespace: String,
    lease: Option<String>,
    /// Snapshotter layers are unpacked into.
    pub snapshotter: String,
    /// containerd gives every layer file to the one mapped id as it unpacks (a single-id
    /// rootless user, see [`super::owners`]): unpacked layers then differ from the image's
    /// diff ids by design.
    pub squashed_owners: bool,
}

impl Store {
    pub fn new(channel: Channel, namespace: &str, snapshotter: &str) -> Store {
        Store {
            channel,
            namespace: namespace.to_owned(),
            lease: None,
            snapshotter: snapshotter.to_owned(),
            squashed_owners: false,
        }
    }

    fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if let Ok(v) = self.namespace.parse() {
            r.metadata_mut().insert("containerd-namespace", v);
        }
        if let Some(l) = self.lease.as_deref().and_then(|l| l.parse().ok()) {
            r.metadata_mut().insert("containerd-lease", l);
        }
        r
    }

    fn content(&self) -> ContentClient<Channel> {
        ContentClient::new(self.channel.clone())
            .max_decoding_message_size(32 << 20)
            .max_encoding_message_size(32 << 20)
    }

    fn images_client(&self) -> ImagesClient<Channel> {
        ImagesClient::new(self.channel.clone())
    }

    fn snapshots(&self) -> SnapshotsClient<Channel> {
        SnapshotsClient::new(self.channel.clone())
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
        LeasesClient::new(self.channel.clone())
            .create(self.req(LeaseCreateRequest {
                id: id.clone(),
                labels,
            }))
            .await
            .map_err(|s| StoreError::rpc("lease create", &id, s))?;
        Ok(Store {
            lease: Some(id),
            ..self.clone()
        })
    }

    /// Ends this store's lease (what it protected must be referenced by an image by now).
    pub async fn release(&self) -> Result<()> {
        let Some(id) = &self.lease else {
            return Ok(());
        };
        let mut plain = self.clone();
        plain.lease = None;
        LeasesClient::new(self.channel.clone())
            .delete(plain.req(LeaseDeleteRequest {
                id: id.clone(),
                sync: false,
            }))
            .await
            .map_err(|s| StoreError::rpc("lease delete", id, s))?;
        Ok(())
    }

    // ---- content ----

    /// The content's info, or None when the store does not have it.
    pub async fn info(&self, digest: &str) -> Result<Option<ContentInfo>> {
        match self
            .content()
            .info(self.req(InfoRequest {
                digest: digest.to_owned(),
            }))
            .await
        {
            Ok(r) => Ok(r.into_inner().info),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(StoreError::rpc("content info", digest, s)),
        }
    }

    /// Reads a whole blob (for manifests and configs).
    pub async fn read(&self, digest: &str) -> Result<Vec<u8>> {
        let mut stream = self
            .content()
            .read(self.req(ReadContentRequest {
                digest: digest.to_owned(),
                offset: 0,
                size: 0,
            }))
            .await
            .map_err(|s| StoreError::rpc("content read", digest, s))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(r) = stream
            .message()
            .await
            .map_err(|s| StoreError::rpc("content read", digest, s))?
        {
            out.extend_from_slice(&r.data);
        }
        Ok(out)
    }

    /// Reads `size` bytes of a blob from `offset` (large blobs are read in such pieces).
    pub async fn read_range(&self, digest: &str, offset: i64, size: i64) -> Result<Vec<u8>> {
        let mut stream = self
            .content()
            .read(self.req(ReadContentRequest {
                digest: digest.to_owned(),
                offset,
                size,
            }))
            .await
            .map_err(|s| StoreError::rpc("content read", digest, s))?
            .into_inner();
        let mut out = Vec::with_capacity(size.max(0) as usize);
        while let Some(r) = stream
            .message()
            .await
            .map_err(|s| StoreError::rpc("content read", digest, s))?
        {
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
        self.content()
            .update(self.req(ContentUpdateRequest {
                info: Some(ContentInfo {
                    digest: digest.to_owned(),
                    labels,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths }),
            }))
            .await
            .map_err(|s| StoreError::rpc("content update", digest, s))?;
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
                Err(StoreError::Rpc { code, message, .. })
                    if code == Code::Unavailable
                        && message.contains("locked")
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
            .content()
            .write(self.req(ReceiverStream::new(rx)))
            .await;
        let mut stream = match resp {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == Code::AlreadyExists => return Ok(None),
            Err(s) => return Err(StoreError::rpc("content write", what, s)),
        };
        let first = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(StoreError::StreamClosed(what)),
            Err(s) if s.code() == Code::AlreadyExists => return Ok(None),
            Err(s) => return Err(StoreError::rpc("content write", what, s)),
        };
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
        if let Err(err) = self
            .content()
            .abort(self.req(AbortRequest {
                r#ref: ingest_ref.to_owned(),
            }))
            .await
        {
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
        match self
            .images_client()
            .get(self.req(GetImageRequest {
                name: name.to_owned(),
            }))
            .await
        {
            Ok(r) => Ok(r.into_inner().image),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(StoreError::rpc("image get", name, s)),
        }
    }

    pub async fn images(&self) -> Result<Vec<Image>> {
        Ok(self
            .images_client()
            .list(self.req(ListImagesRequest { filters: vec![] }))
            .await
            .map_err(|s| StoreError::rpc("image list", "", s))?
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
        match self
            .images_client()
            .create(self.req(CreateImageRequest {
                image: Some(image.clone()),
                source_date_epoch: None,
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::AlreadyExists => {
                self.images_client()
                    .update(self.req(UpdateImageRequest {
                        image: Some(image),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["target".into(), "labels".into()],
                        }),
                        source_date_epoch: None,
                    }))
                    .await
                    .map_err(|s| StoreError::rpc("image update", name, s))?;
                Ok(())
            }
            Err(s) => Err(StoreError::rpc("image create", name, s)),
        }
    }

    /// Deletes a record; `sync` waits for garbage collection of what it alone held.
    pub async fn delete_image(&self, name: &str, sync: bool) -> Result<()> {
        self.images_client()
            .delete(self.req(DeleteImageRequest {
                name: name.to_owned(),
                sync,
                target: None,
            }))
            .await
            .map_err(|s| StoreError::rpc("image delete", name, s))?;
        Ok(())
    }

    // ---- snapshots and diff ----

    /// Whether a committed snapshot with this name exists.
    pub async fn snapshot_exists(&self, key: &str) -> Result<bool> {
        match self
            .snapshots()
            .stat(self.req(StatSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_owned(),
            }))
            .await
        {
            Ok(_) => Ok(true),
            Err(s) if s.code() == Code::NotFound => Ok(false),
            Err(s) => Err(StoreError::rpc("snapshot stat", key, s)),
        }
    }

    pub async fn prepare(&self, key: &str, parent: &str) -> Result<Vec<Mount>> {
        Ok(self
            .snapshots()
            .prepare(self.req(PrepareSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_owned(),
                parent: parent.to_owned(),
                labels: HashMap::new(),
            }))
            .await
            .map_err(|s| StoreError::rpc("snapshot prepare", key, s))?
            .into_inner()
            .mounts)
    }

    pub async fn commit_snapshot(&self, name: &str, key: &str) -> Result<()> {
        self.snapshots()
            .commit(self.req(CommitSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                name: name.to_owned(),
                key: key.to_owned(),
                labels: HashMap::new(),
            }))
            .await
            .map_err(|s| StoreError::rpc("snapshot commit", name, s))?;
        Ok(())
    }

    pub async fn remove_snapshot(&self, key: &str) -> Result<()> {
        match self
            .snapshots()
            .remove(self.req(RemoveSnapshotRequest {
                snapshotter: self.snapshotter.clone(),
                key: key.to_owned(),
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::NotFound => Ok(()),
            Err(s) => Err(StoreError::rpc("snapshot remove", key, s)),
        }
    }

    /// Applies a layer blob onto prepared mounts; returns the digest of the uncompressed tar.
    pub async fn apply(&self, layer: &Descriptor, mounts: Vec<Mount>) -> Result<String> {
        let applied = DiffClient::new(self.channel.clone())
            .apply(self.req(ApplyRequest {
                diff: Some(to_pb(layer)),
                mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            }))
            .await
            .map_err(|s| StoreError::rpc("diff apply", &layer.digest, s))?
            .into_inner()
            .applied;
        Ok(applied.map(|d| d.digest).unwrap_or_default())
    }

    /// The channel, for services this module does not wrap (containers).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn request<T>(&self, msg: T) -> Request<T> {
        self.req(msg)
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
        match self.stream.message().await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(StoreError::StreamClosed(self.what.clone())),
            Err(s) => Err(StoreError::rpc("content write", self.what.clone(), s)),
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
        match self.round_trip(msg).await {
            Ok(_) => Ok(()),
            Err(StoreError::Rpc {
                code: Code::AlreadyExists,
                ..
            }) => Ok(()),
            Err(StoreError::Rpc { message, .. })
                if message.contains("unexpected commit digest") =>
            {
                Err(StoreError::DigestMismatch {
                    what: self.what.clone(),
                    expected: self.expected.clone(),
                    got: message,
                })
            }
            Err(StoreError::Rpc { message, .. }) if message.contains("unexpected commit size") => {
                Err(StoreError::SizeMismatch {
                    what: self.what.clone(),
                    expected: self.total,
                    got: self.offset,
                })
            }
            Err(e) => Err(e),
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
