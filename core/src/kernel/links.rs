//! Links to Edgeplane's own pages, for what a domain mails (an invitation, a password reset).
//! The HTTP layer serves those pages, so it builds the [`Links`]: a domain asks for "the
//! invitation page for this token" and never spells a path.

/// Where the pages a mailed link opens are: the public base URL and each page's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    base: String,
    invitation_path: &'static str,
    password_reset_path: &'static str,
}

impl Links {
    /// Links under `base` (a trailing `/` is ignored) to the given pages, each taking `?token=`.
    pub fn new(
        base: &str,
        invitation_path: &'static str,
        password_reset_path: &'static str,
    ) -> Self {
        Links {
            base: base.trim_end_matches('/').to_owned(),
            invitation_path,
            password_reset_path,
        }
    }

    /// The page that accepts the invitation of `token`.
    pub fn invitation(&self, token: &str) -> String {
        format!("{}{}?token={token}", self.base, self.invitation_path)
    }

    /// The page that sets a new password with the reset `token`.
    pub fn password_reset(&self, token: &str) -> String {
        format!("{}{}?token={token}", self.base, self.password_reset_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_join_base_path_and_token() {
        let l = Links::new("https://cp.test/", "/inv", "/reset");
        assert_eq!(l.invitation("t1"), "https://cp.test/inv?token=t1");
        assert_eq!(l.password_reset("t2"), "https://cp.test/reset?token=t2");
    }
}
