//! `persona-sim keys …`: the API keys `serve` accepts.

use std::io::Write;

use crate::api_keys::Keys;
use crate::cli::args::KeysCommand;

pub async fn run(command: &KeysCommand, store: &Keys, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { name } => {
            let key = store.create(name).await?;
            writeln!(out, "{key}")?;
            eprintln!(
                "key {name:?} created; it is shown only now (only its hash is kept in {}). Send it as `Authorization: Bearer <key>`",
                store.describe()
            );
        }
        KeysCommand::List => {
            let keys = store.list().await?;
            if keys.is_empty() {
                eprintln!("no keys yet: `persona-sim keys create --name NAME` makes one");
            }
            for k in keys {
                let state = match k.revoked {
                    Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
                    None => "active".into(),
                };
                writeln!(
                    out,
                    "{}\t{}\tcreated {}\t{state}",
                    k.name,
                    k.shown,
                    k.created.format("%Y-%m-%d %H:%M")
                )?;
            }
        }
        KeysCommand::Revoke { name } => {
            store.revoke(name).await?;
            writeln!(out, "revoked {name}")?;
        }
    }
    Ok(())
}
