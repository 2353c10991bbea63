//! What commands that act on an endpoint share: finding it by name or id (one rule for
//! all), and reading a secret from standard input (so it stays out of shell history).

use std::io::BufRead;

use anyhow::{Result, bail};
use hookscope_core::store::endpoints::Endpoint;

/// The endpoint `wanted` names (its id, or its name in any case), or the default one when
/// none is named. A name that several endpoints share is refused: give the id.
pub fn resolve_endpoint(list: &[Endpoint], wanted: Option<&str>) -> Result<Endpoint> {
    let Some(wanted) = wanted else {
        return match list.iter().find(|e| e.is_default).or(list.first()) {
            Some(endpoint) => Ok(endpoint.clone()),
            None => bail!("no endpoint yet: `hookscope serve` creates the default one"),
        };
    };
    if let Some(by_id) = list.iter().find(|e| e.id == wanted) {
        return Ok(by_id.clone());
    }
    let named: Vec<&Endpoint> = list
        .iter()
        .filter(|e| e.name.eq_ignore_ascii_case(wanted))
        .collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no endpoint named {wanted:?}: `hookscope endpoints` lists them"),
        _ => bail!("several endpoints are named {wanted:?}: give its id"),
    }
}

/// One line from standard input, without its line ending and surrounding spaces.
pub fn read_secret(what: &str) -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let secret = line.trim().to_string();
    if secret.is_empty() {
        bail!("{what} is empty: paste it, or give it as an argument");
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(id: &str, name: &str, is_default: bool) -> Endpoint {
        Endpoint {
            id: id.into(),
            name: name.into(),
            token: format!("t{id}"),
            created_at: String::new(),
            is_default,
            secret: None,
            has_secret: false,
            forward_to: None,
            response: None,
        }
    }

    #[test]
    fn one_rule_finds_an_endpoint() {
        let list = [
            endpoint("ep_1", "Shop", false),
            endpoint("ep_2", "Default", true),
            endpoint("ep_3", "Twin", false),
            endpoint("ep_4", "twin", false),
        ];
        assert_eq!(
            resolve_endpoint(&list, None).unwrap().id,
            "ep_2",
            "the default"
        );
        assert_eq!(
            resolve_endpoint(&list, Some("shop")).unwrap().id,
            "ep_1",
            "any case"
        );
        assert_eq!(
            resolve_endpoint(&list, Some("ep_4")).unwrap().id,
            "ep_4",
            "by id"
        );
        let shared = resolve_endpoint(&list, Some("TWIN"))
            .unwrap_err()
            .to_string();
        assert!(shared.contains("give its id"), "{shared}");
        let missing = resolve_endpoint(&list, Some("nope"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("no endpoint named"), "{missing}");
    }
}
