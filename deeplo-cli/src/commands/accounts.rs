//! `deeplo orgs|users|tokens|audit`: organizations, their members, API tokens and the audit
//! log, as the machine's root manages them: how the first admin and their token are made.
//!
//! Through the daemon's admin socket when it runs (the daemon owns the store), else on the
//! store in this process; either way each change is audited as `root`. A token's text is
//! printed once, on stdout alone, so that `deeplo tokens create ... > FILE` keeps it out of
//! the terminal.

use std::process::ExitCode;

use anyhow::Context as _;
use deeplo_core::access::{Accounts, Actor, AuditEntry, AuditQuery, Email, OrgName, TokenId, TokenRecord, UserInfo};

use crate::context::Context;
use crate::daemon::client::AdminClient;
use crate::daemon::{
    CreateOrg, CreateToken, MembershipBody, MembershipChanged, OrgCreated, OrgSummary, TokenCreated, new_token,
    org_summaries,
};
use crate::output;

/// Where the verbs act: the running daemon, or the store in this process.
enum Backend {
    Daemon(AdminClient),
    Local(Accounts),
}

impl Backend {
    async fn open(ctx: &Context) -> anyhow::Result<Self> {
        Ok(match AdminClient::connect(&ctx.settings.unix_socket).await {
            Some(client) => Backend::Daemon(client),
            None => Backend::Local(Accounts::new(crate::wiring::store(ctx)?)),
        })
    }
}

fn parse_email(text: &str) -> anyhow::Result<Email> {
    Email::new(text).context("EMAIL")
}

fn parse_org(text: &str) -> anyhow::Result<OrgName> {
    OrgName::new(text).context("--org")
}

/// `deeplo orgs list`.
pub async fn orgs_list(ctx: &Context) -> anyhow::Result<ExitCode> {
    let orgs: Vec<OrgSummary> = match Backend::open(ctx).await? {
        Backend::Daemon(client) => client.get_json("/v1/orgs").await?,
        Backend::Local(accounts) => {
            let config = ctx.load_config()?.config;
            let users = accounts.directory().users().await?;
            let created: Vec<OrgName> = accounts.directory().snapshot().await?.orgs.keys().cloned().collect();
            org_summaries(&config, &users, created.into_iter())
        }
    };
    if ctx.json() {
        output::json(&orgs)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = orgs
        .iter()
        .map(|o| vec![o.name.to_string(), o.members.to_string(), o.hosts.to_string(), o.projects.to_string()])
        .collect();
    print!("{}", output::table(&["ORG", "MEMBERS", "HOSTS", "PROJECTS"], &rows));
    Ok(ExitCode::SUCCESS)
}

/// `deeplo orgs create NAME`.
pub async fn orgs_create(ctx: &Context, name: &str) -> anyhow::Result<ExitCode> {
    let created: OrgCreated = match Backend::open(ctx).await? {
        Backend::Daemon(client) => client.post_json("/v1/orgs", &CreateOrg { name: name.to_owned() }).await?,
        Backend::Local(accounts) => {
            let name = OrgName::new(name).context("NAME")?;
            let created = accounts.create_org(&Actor::Root, &name, jiff::Timestamp::now()).await?;
            OrgCreated { name, created }
        }
    };
    if ctx.json() {
        output::json(&created)?;
    } else if created.created {
        println!(
            "Created organization {}; put hosts, repos and projects in it with `org: {}`.",
            created.name, created.name
        );
    } else {
        println!("Organization {} already exists.", created.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// `deeplo users list [--org ORG]`.
pub async fn users_list(ctx: &Context, org: Option<&str>) -> anyhow::Result<ExitCode> {
    let org = org.map(parse_org).transpose()?;
    let mut users: Vec<UserInfo> = match Backend::open(ctx).await? {
        Backend::Daemon(client) => client.get_json("/v1/users").await?,
        Backend::Local(accounts) => accounts.directory().users().await?,
    };
    if let Some(org) = &org {
        users.retain(|u| u.memberships.contains_key(org));
    }
    if ctx.json() {
        output::json(&users)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            let roles: Vec<String> = u
                .memberships
                .iter()
                .filter(|(o, _)| org.as_ref().is_none_or(|only| only == *o))
                .map(|(o, r)| format!("{o}:{r}"))
                .collect();
            vec![u.email.to_string(), roles.join(", ")]
        })
        .collect();
    print!("{}", output::table(&["USER", "ROLES"], &rows));
    Ok(ExitCode::SUCCESS)
}

/// `deeplo users add EMAIL --org ORG --role ROLE` and `deeplo users role EMAIL ROLE --org ORG`.
pub async fn users_set(ctx: &Context, email: &str, org: &str, role: &str, change: bool) -> anyhow::Result<ExitCode> {
    let body = MembershipBody { email: email.to_owned(), org: org.to_owned(), role: Some(role.to_owned()), change };
    let changed: MembershipChanged = match Backend::open(ctx).await? {
        Backend::Daemon(client) => client.post_json("/v1/users", &body).await?,
        Backend::Local(accounts) => {
            let (email, org) = (parse_email(email)?, parse_org(org)?);
            let role = role.parse().context("ROLE")?;
            let now = jiff::Timestamp::now();
            let before = if change {
                Some(accounts.change_role(&Actor::Root, &email, &org, role, now).await?)
            } else {
                accounts.add_member(&Actor::Root, &email, &org, role, now).await?
            };
            MembershipChanged { email, org, role: Some(role), before }
        }
    };
    if ctx.json() {
        output::json(&changed)?;
        return Ok(ExitCode::SUCCESS);
    }
    let role = changed.role.map(|r| r.to_string()).unwrap_or_default();
    match changed.before {
        None => println!("Added {} to {} as {role}.", changed.email, changed.org),
        Some(before) if before.to_string() == role => {
            println!("{} already was {role} in {}.", changed.email, changed.org)
        }
        Some(before) => println!("{} is now {role} in {} (was {before}).", changed.email, changed.org),
    }
    Ok(ExitCode::SUCCESS)
}

/// `deeplo users remove EMAIL --org ORG`.
pub async fn users_remove(ctx: &Context, email: &str, org: &str) -> anyhow::Result<ExitCode> {
    let body = MembershipBody { email: email.to_owned(), org: org.to_owned(), role: None, change: false };
    let changed: MembershipChanged = match Backend::open(ctx).await? {
        Backend::Daemon(client) => client.post_json("/v1/users/remove", &body).await?,
        Backend::Local(accounts) => {
            let (email, org) = (parse_email(email)?, parse_org(org)?);
            let before = accounts.remove_member(&Actor::Root, &email, &org, jiff::Timestamp::now()).await?;
            MembershipChanged { email, org, role: None, before: Some(before) }
        }
    };
    if ctx.json() {
        output::json(&changed)?;
    } else {
        println!("Removed {} from {}; their tokens no longer act there.", changed.email, changed.org);
    }
    Ok(ExitCode::SUCCESS)
}

/// `deeplo tokens create --user EMAIL [--name NAME] [--expires DURATION] [--org ORG] [--role ROLE]`.
pub async fn tokens_create(ctx: &Context, request: CreateToken) -> anyhow::Result<ExitCode> {
    let created: TokenCreated = match Backend::open(ctx).await? {
        Backend::Daemon(client) => client.post_json("/v1/tokens", &request).await?,
        Backend::Local(accounts) => {
            let now = jiff::Timestamp::now();
            let new = new_token(&request, now).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
            let (token, record) = accounts.create_token(&Actor::Root, &new, now).await?;
            TokenCreated { token: token.secret().expose().to_owned(), record }
        }
    };
    if ctx.json() {
        output::json(&created)?;
        return Ok(ExitCode::SUCCESS);
    }
    let r = &created.record;
    let expiry = r.expires_at.map_or_else(|| "never expires".to_owned(), |at| format!("expires {at}"));
    eprintln!("API token {} ({:?}) of {}, {expiry}:", r.id, r.name, r.user);
    println!("{}", created.token);
    eprintln!("It is shown once: deeplo keeps only its hash. Use it as DEEPLO_TOKEN, or with `deeplo login URL`.");
    Ok(ExitCode::SUCCESS)
}

/// `deeplo tokens list [--user EMAIL]`.
pub async fn tokens_list(ctx: &Context, user: Option<&str>) -> anyhow::Result<ExitCode> {
    let tokens: Vec<TokenRecord> = match Backend::open(ctx).await? {
        Backend::Daemon(client) => {
            let query = user.map(|u| format!("?user={}", urlencoding(u))).unwrap_or_default();
            client.get_json(&format!("/v1/tokens{query}")).await?
        }
        Backend::Local(accounts) => {
            let user = user.map(parse_email).transpose()?;
            accounts.directory().tokens(user.as_ref()).await?
        }
    };
    if ctx.json() {
        output::json(&tokens)?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = jiff::Timestamp::now();
    let when = |t: Option<jiff::Timestamp>| t.map_or_else(|| "-".to_owned(), |t| output::relative_time(t, now));
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            let scope = match (&t.org, t.max_role) {
                (None, None) => "all".to_owned(),
                (org, role) => [org.as_ref().map(ToString::to_string), role.map(|r| format!("at most {r}"))]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let state = if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at.is_some_and(|at| at <= now) {
                "expired"
            } else {
                "valid"
            };
            vec![t.id.to_string(), t.user.to_string(), t.name.clone(), scope, state.into(), when(t.last_used_at)]
        })
        .collect();
    print!("{}", output::table(&["ID", "USER", "NAME", "SCOPE", "STATE", "LAST USED"], &rows));
    Ok(ExitCode::SUCCESS)
}

/// `deeplo tokens revoke ID`.
pub async fn tokens_revoke(ctx: &Context, id: &str) -> anyhow::Result<ExitCode> {
    let parsed = TokenId::parse(id)
        .with_context(|| format!("{id:?} is not a token id: 8 characters, as `deeplo tokens list` shows"))?;
    let record: TokenRecord = match Backend::open(ctx).await? {
        Backend::Daemon(client) => client.delete_json(&format!("/v1/tokens/{parsed}")).await?,
        Backend::Local(accounts) => accounts.revoke_token(&Actor::Root, &parsed, jiff::Timestamp::now()).await?,
    };
    if ctx.json() {
        output::json(&record)?;
    } else {
        println!("Revoked token {} of {}; it no longer authenticates.", record.id, record.user);
    }
    Ok(ExitCode::SUCCESS)
}

/// `deeplo audit [--org ORG] [--limit N]`.
pub async fn audit(ctx: &Context, org: Option<&str>, limit: usize) -> anyhow::Result<ExitCode> {
    let org = org.map(parse_org).transpose()?;
    let entries: Vec<AuditEntry> = match Backend::open(ctx).await? {
        Backend::Daemon(client) => {
            let org = org.as_ref().map(|o| format!("&org={o}")).unwrap_or_default();
            client.get_json(&format!("/v1/audit?limit={limit}{org}")).await?
        }
        Backend::Local(accounts) => accounts.audit_log(&AuditQuery { org, since: None, limit: Some(limit) }).await?,
    };
    if ctx.json() {
        output::json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let outcome = match &e.outcome {
                deeplo_core::access::Outcome::Ok => "ok".to_owned(),
                deeplo_core::access::Outcome::Denied => "denied".to_owned(),
                deeplo_core::access::Outcome::Failed { message } => format!("failed: {message}"),
            };
            let org = e.org.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string);
            vec![e.at.to_string(), e.actor.to_string(), org, e.action.clone(), e.target.clone(), outcome]
        })
        .collect();
    print!("{}", output::table(&["AT", "ACTOR", "ORG", "ACTION", "TARGET", "OUTCOME"], &rows));
    Ok(ExitCode::SUCCESS)
}

/// Percent-encodes a query value (an email address holds `+` and `@`).
fn urlencoding(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `--expires`: whole days (`90d`) or a Go duration (`12h`, `30m`), in seconds.
pub fn expiry_secs(text: &str) -> anyhow::Result<u64> {
    let secs = match text.strip_suffix('d') {
        Some(days) => days
            .parse::<u64>()
            .ok()
            .and_then(|d| d.checked_mul(86_400))
            .with_context(|| format!("--expires {text:?}: days must be a whole number, such as 90d"))?,
        None => deeplo_core::config::parse_duration(text)
            .map_err(|e| anyhow::anyhow!("--expires: {e}; or give days, such as 90d"))?
            .as_secs(),
    };
    anyhow::ensure!(secs > 0, "--expires {text:?}: must be longer than 0");
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries() {
        assert_eq!(expiry_secs("90d").unwrap(), 90 * 86_400);
        assert_eq!(expiry_secs("12h").unwrap(), 12 * 3600);
        assert!(expiry_secs("0d").is_err());
        assert!(expiry_secs("xd").unwrap_err().to_string().contains("whole number"));
        assert!(expiry_secs("5 weeks").is_err());
        assert_eq!(urlencoding("ci+deploy@example.com"), "ci%2Bdeploy%40example.com");
    }
}
