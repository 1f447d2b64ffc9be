//! Checks of URLs as users write them in config, before anything is sent.

/// `Ok` unless the port in `url`'s authority is not a number from 1 to 65535 (`http://h:70000`
/// would otherwise be sent to port 80, with its credentials). A URL without a port, or without
/// a scheme (`host:4317`), is checked the same way; what else is wrong with a URL is for its
/// user to say.
pub fn check_url_port(key: &str, url: &str) -> Result<(), String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split_once(']').and_then(|(_, p)| p.strip_prefix(':'))
    } else {
        host_port.rsplit_once(':').map(|(_, p)| p)
    };
    match port {
        None | Some("") => Ok(()),
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) && matches!(p.parse::<u32>(), Ok(1..=65535)) => Ok(()),
        // The URL itself is not repeated: it may hold credentials.
        Some(p) => Err(format!("`{key}`: port {p:?} is not a number from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_from_1_to_65535_pass_and_others_are_named() {
        for ok in ["http://h:65535/x", "https://[::1]:443/", "http://h/", "h:4317", "http://u:p@h:8080/?a=b:c", "unix:///run/x.sock"] {
            assert_eq!(check_url_port("endpoint", ok), Ok(()), "{ok}");
        }
        for bad in ["http://h:70000/", "h:0", "http://[::1]:65536", "http://h:8o/"] {
            assert!(check_url_port("endpoint", bad).unwrap_err().contains("not a number from 1 to 65535"), "{bad}");
        }
    }
}
