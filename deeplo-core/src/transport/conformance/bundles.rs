//! Bundles: layout, modes, symlinks and replacing what a previous bundle wrote.

use bytes::Bytes;

use super::{remove_scratch, run_ok, scratch, within};
use crate::model::CommitId;
use crate::path::RelPath;
use crate::source::{Bundle, BundleEntry, EntryKind};
use crate::transport::{ExitStatus, RemoteCommand, Transport};

fn file(path: &str, data: &str, executable: bool) -> BundleEntry {
    BundleEntry {
        path: RelPath::new(path).unwrap(),
        kind: EntryKind::File { data: Bytes::copy_from_slice(data.as_bytes()), executable },
    }
}

fn link(path: &str, target: &str) -> BundleEntry {
    BundleEntry { path: RelPath::new(path).unwrap(), kind: EntryKind::Symlink { target: target.into() } }
}

fn bundle(n: u8, mut entries: Vec<BundleEntry>) -> Bundle {
    entries.sort_by(|a, b| a.path.as_str().cmp(b.path.as_str()));
    Bundle { commit: CommitId::new(format!("{n:02x}").repeat(20)).unwrap(), entries }
}

/// `write_bundle` creates the directory and its parents, writes nested files, an
/// executable (0755) and plain files (0644), directories 0755, a symlink (when
/// [`Capabilities::symlinks`](crate::Capabilities); a transport without refuses the bundle),
/// and a second bundle replaces the files, modes and link the first one wrote. Read back
/// with `cat`, `stat -c %a` and `readlink` over the same transport.
pub async fn bundles_keep_layout_modes_and_links(t: &dyn Transport) {
    let caps = t.capabilities();
    let dir = scratch(t).await;
    let root = format!("{dir}/deploy/app");
    let with_link = |mut entries: Vec<BundleEntry>, target: &str| {
        if caps.symlinks {
            entries.push(link("current", target));
        }
        entries
    };
    let first = bundle(
        1,
        with_link(
            vec![
                file("bin/start.sh", "#!/bin/sh\necho one\n", true),
                file("conf/nested/deep/app.conf", "old\n", false),
                file("plain.txt", "plain one\n", true),
            ],
            "conf/nested/deep/app.conf",
        ),
    );
    within("write_bundle", t.write_bundle(&root, &first)).await.unwrap_or_else(|e| panic!("write_bundle {root}: {e}"));
    assert_eq!(cat(t, &format!("{root}/conf/nested/deep/app.conf")).await, "old\n", "a file of the first bundle");

    let second = bundle(
        2,
        with_link(
            vec![
                file("bin/start.sh", "#!/bin/sh\necho two\n", true),
                file("conf/extra.txt", "extra\n", false),
                file("conf/nested/deep/app.conf", "new\n", false),
                file("plain.txt", "plain two\n", false),
            ],
            "bin/start.sh",
        ),
    );
    within("write_bundle over an earlier one", t.write_bundle(&root, &second))
        .await
        .unwrap_or_else(|e| panic!("write_bundle {root} again: {e}"));
    for (path, data) in [
        ("bin/start.sh", "#!/bin/sh\necho two\n"),
        ("conf/extra.txt", "extra\n"),
        ("conf/nested/deep/app.conf", "new\n"),
        ("plain.txt", "plain two\n"),
    ] {
        assert_eq!(cat(t, &format!("{root}/{path}")).await, data, "{path} after the second bundle");
    }
    if caps.file_modes {
        for (path, mode) in [
            ("bin/start.sh", "755"),
            ("plain.txt", "644"),
            ("conf/extra.txt", "644"),
            ("conf/nested/deep/app.conf", "644"),
            ("bin", "755"),
            ("conf", "755"),
            ("conf/nested", "755"),
            ("conf/nested/deep", "755"),
        ] {
            let out = run_ok(t, &RemoteCommand::new("stat").args(["-c", "%a", &format!("{root}/{path}")])).await;
            assert_eq!(out.stdout_str().trim(), mode, "the mode of {path} (stat: {})", out.stderr_str());
        }
        let out = run_ok(t, &RemoteCommand::new(format!("{root}/bin/start.sh"))).await;
        assert_eq!(out.stdout_str(), "two\n", "running the executable file ({})", out.stderr_str());
    }
    if caps.symlinks {
        let out = run_ok(t, &RemoteCommand::new("readlink").arg(format!("{root}/current"))).await;
        assert_eq!(out.stdout_str(), "bin/start.sh\n", "the symlink after the second bundle replaced it");
    } else {
        let linked = bundle(3, vec![link("current", "plain.txt")]);
        let written = within("write_bundle with a symlink", t.write_bundle(&root, &linked)).await;
        assert!(written.is_err(), "a transport without symlink support must refuse a bundle that holds one");
    }
    remove_scratch(t, &dir).await;
}

async fn cat(t: &dyn Transport, path: &str) -> String {
    let out = run_ok(t, &RemoteCommand::new("cat").arg(path)).await;
    assert_eq!(out.status, ExitStatus::Code(0), "cat {path}: {}", out.stderr_str());
    out.stdout_str().into_owned()
}
