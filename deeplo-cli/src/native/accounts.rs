//! Users and groups, read from `/etc/passwd` and `/etc/group` (or those of an install root):
//! enough to tell whether the service user can read a file, and to give the admin socket
//! to a group.

use std::path::Path;

use anyhow::Context as _;

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// The user named `name` in this machine's `/etc/passwd`, if any.
pub fn user(name: &str) -> anyhow::Result<Option<User>> {
    user_in(Path::new("/"), name)
}

/// The user named `name` in `ROOT/etc/passwd`.
pub fn user_in(root: &Path, name: &str) -> anyhow::Result<Option<User>> {
    let path = root.join("etc/passwd");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Ok(text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| User {
            name: f[0].to_owned(),
            uid: f[2].parse().unwrap_or(u32::MAX),
            gid: f[3].parse().unwrap_or(u32::MAX),
        })
    }))
}

/// The group named `name` in this machine's `/etc/group`, if any.
pub fn group(name: &str) -> anyhow::Result<Option<Group>> {
    Ok(groups_in(Path::new("/"))?.into_iter().find(|g| g.name == name))
}

/// Every group of `ROOT/etc/group` (none when the file does not exist).
pub fn groups_in(root: &Path) -> anyhow::Result<Vec<Group>> {
    let path = root.join("etc/group");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 3).then(|| Group {
                name: f[0].to_owned(),
                gid: f[2].parse().unwrap_or(u32::MAX),
                members: f
                    .get(3)
                    .map_or_else(Vec::new, |m| m.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()),
            })
        })
        .collect())
}

/// The group ids `user` holds: its primary group and every group listing it as a member.
pub fn group_ids(user: &User) -> anyhow::Result<Vec<u32>> {
    let mut ids = vec![user.gid];
    for g in groups_in(Path::new("/"))? {
        if g.members.contains(&user.name) && !ids.contains(&g.gid) {
            ids.push(g.gid);
        }
    }
    Ok(ids)
}

/// A group's id, from its name or number (as `DEEPLO_ADMIN_GROUP` takes it).
pub fn group_id(group_or_gid: &str) -> anyhow::Result<u32> {
    if let Ok(gid) = group_or_gid.parse() {
        return Ok(gid);
    }
    group(group_or_gid)?
        .map(|g| g.gid)
        .with_context(|| format!("DEEPLO_ADMIN_GROUP: no group named \"{group_or_gid}\" in /etc/group"))
}

/// Whether `user` (holding `gids`) may read `path`, from the mode bits of the file and of
/// every directory above it (POSIX ACLs are not consulted). `Err` when this process cannot
/// even look (a directory it may not search), naming the path.
pub fn can_read(path: &Path, user: &User, gids: &[u32]) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    if user.uid == 0 {
        return std::fs::metadata(path).map(|_| true);
    }
    let allowed = |meta: &std::fs::Metadata, bit: u32| -> bool {
        let mode = meta.mode();
        if meta.uid() == user.uid {
            mode & (bit << 6) != 0
        } else if gids.contains(&meta.gid()) {
            mode & (bit << 3) != 0
        } else {
            mode & bit != 0
        }
    };
    let absolute = std::path::absolute(path)?;
    for dir in absolute.ancestors().skip(1) {
        if !allowed(&std::fs::metadata(dir)?, 0o1) {
            return Ok(false);
        }
    }
    let meta = std::fs::metadata(&absolute)?;
    Ok(allowed(&meta, 0o4))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn reads_users_and_groups_of_a_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\ndeeplo:x:998:997::/var/lib/deeplo:/usr/sbin/nologin\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\ndeeplo:x:997:\nops:x:1000:ann,deeplo\n").unwrap();
        let u = user_in(dir.path(), "deeplo").unwrap().unwrap();
        assert_eq!((u.uid, u.gid), (998, 997));
        assert_eq!(user_in(dir.path(), "nobody-here").unwrap(), None);
        let groups = groups_in(dir.path()).unwrap();
        assert_eq!(groups[2].members, vec!["ann".to_string(), "deeplo".to_string()]);
        assert_eq!(user_in(&dir.path().join("missing"), "x").unwrap(), None);
    }

    #[test]
    fn mode_bits_decide_readability() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "k").unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let stranger = User { name: "s".into(), uid: 54_321, gid: 54_321 };
        let member = User { name: "m".into(), uid: 54_322, gid: meta.gid() };
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(!can_read(&file, &stranger, &[stranger.gid]).unwrap());
        assert!(can_read(&file, &member, &[member.gid]).unwrap());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(can_read(&file, &stranger, &[stranger.gid]).unwrap());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!can_read(&file, &stranger, &[stranger.gid]).unwrap(), "a directory it cannot search");
        assert!(can_read(&file, &User { name: "o".into(), uid: meta.uid(), gid: 1 }, &[1]).unwrap());
    }
}
