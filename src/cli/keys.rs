//! `persona-sim keys …`: the API keys `serve` accepts.

use std::io::Write;
use std::path::Path;

use crate::api_keys::KeyStore;
use crate::cli::args::KeysCommand;

pub fn run(command: &KeysCommand, data_dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let store = KeyStore::in_dir(data_dir);
    match command {
        KeysCommand::Create { name } => {
            let key = store.create(name)?;
            writeln!(out, "{key}")?;
            eprintln!(
                "key {name:?} created; it is shown only now (only its hash is kept in {}). Send it as `Authorization: Bearer <key>`",
                store.path.display()
            );
        }
        KeysCommand::List => {
            let keys = store.list()?;
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
            store.revoke(name)?;
            writeln!(out, "revoked {name}")?;
        }
    }
    Ok(())
}
