//! `-o type=local,dest=DIR` and `-o type=tar,dest=FILE`: the final stage's files, written out
//! instead of an image (BuildKit's local and tar exporters): the image is written under a
//! passing record, its snapshot read through the copy helper as a tar, then both let go.

use std::io::Read;
use std::path::Path;

use super::*;
use crate::containers::copy::transfer::ContainerFs;

impl Build<'_> {
    pub(super) async fn export_files(
        &mut self,
        state: State,
        out: &super::super::Output,
        n: usize,
    ) -> anyhow::Result<Built> {
        let (temp, made) = self.passing_image(&state, "files").await?;
        let key = format!("burrow-build-files-{}", std::process::id());
        let result = async {
            let image = self.ctx.images.resolve(&temp).await?;
            let _ = self.leased.remove_snapshot(&key).await;
            let mounts = self.leased.prepare(&key, &image.chain_id).await?;
            let fs = ContainerFs::of_mounts(self.ctx, "the build's result", &mounts);
            let written = match out {
                super::super::Output::Tar(dest) => write_tar(&fs, dest),
                super::super::Output::Local(dir) => write_dir(&fs, dir),
                super::super::Output::Archive(_) => unreachable!("written by export"),
            };
            let _ = self.leased.remove_snapshot(&key).await;
            written
        }
        .await;
        let _ = self.leased.delete_image(&temp, false).await;
        let dest = match out {
            super::super::Output::Tar(d)
            | super::super::Output::Local(d)
            | super::super::Output::Archive(d) => d,
        };
        result.with_context(|| format!("writing the build's files to {}", dest.display()))?;
        self.progress
            .note(n, &format!("copying files to {}", dest.display()));
        self.progress.done(n);
        Ok(Built {
            id: made.id,
            names: Vec::new(),
            unused_args: Vec::new(),
            pushed: Vec::new(),
        })
    }
}

/// The files as one tar at `dest` (`-` is stdout), complete or not at all.
fn write_tar(fs: &ContainerFs, dest: &Path) -> anyhow::Result<()> {
    if dest.as_os_str() == "-" {
        return fs.export_to(|mut r| {
            std::io::copy(&mut r, &mut std::io::stdout().lock())?;
            Ok(())
        });
    }
    let (partial, file) = save::PartialFile::create(dest)?;
    let mut file = std::io::BufWriter::new(file);
    let copied = fs.export_to(|mut r| {
        std::io::copy(&mut r, &mut file)?;
        Ok(())
    });
    match copied.and_then(|()| Ok(file.into_inner().map_err(|e| e.into_error())?)) {
        Ok(_) => Ok(partial.commit()?),
        Err(e) => {
            partial.abandon();
            Err(e)
        }
    }
}

/// The files unpacked under `dir` (made if missing), owned by this user (the owners in the
/// image are not kept, as BuildKit's local exporter writes them); device nodes are skipped.
fn write_dir(fs: &ContainerFs, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs.export_to(|r| unpack_files(r, dir))
}

/// Unpacks a tar of files under `dir`; directories get their modes last, so a read-only one
/// still takes its entries.
fn unpack_files(r: impl Read, dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut archive = tar::Archive::new(r);
    let mut dirs = Vec::new();
    for entry in archive.entries()? {
        let mut e = entry?;
        let kind = e.header().entry_type();
        if kind.is_block_special() || kind.is_character_special() || kind.is_fifo() {
            continue;
        }
        let path = e.path()?.into_owned();
        e.set_preserve_permissions(!kind.is_dir());
        e.set_preserve_mtime(true);
        e.set_unpack_xattrs(false);
        if !e.unpack_in(dir)? {
            anyhow::bail!("{}: a path outside the destination", path.display());
        }
        if kind.is_dir() {
            dirs.push((dir.join(&path), e.header().mode()?));
        }
    }
    for (d, mode) in dirs.into_iter().rev() {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode & 0o7777 | 0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_unpack_with_read_only_dirs_and_without_devices() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o555);
        h.set_size(0);
        b.append_data(&mut h, "ro/", std::io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(2);
        b.append_data(&mut h, "ro/f", &b"hi"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Char);
        h.set_mode(0o666);
        h.set_size(0);
        b.append_data(&mut h, "null", std::io::empty()).unwrap();
        let data = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        unpack_files(&data[..], dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join("ro/f")).unwrap(), b"hi");
        assert!(!dir.path().join("null").exists());
    }
}
