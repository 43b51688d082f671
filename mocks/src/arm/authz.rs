//! Azure RBAC action matching for the mock's principals: `actions` minus `notActions`, with
//! ARM's wildcard semantics.
//!
//! The Azure RBAC docs (role definitions, "Actions" and wildcard permissions,
//! https://learn.microsoft.com/azure/role-based-access-control/role-definitions) say a `*`
//! extends a permission to everything matching the rest of the string, and operation strings
//! are case-insensitive: `*` is every action, `*/read` every read, `Microsoft.Network/*`
//! everything in that namespace.
//! It must not decide subscription access (that is [`crate::state::Principal::can_access`]).

use crate::state::Principal;

/// Glob match with `*` = any sequence (including `/`), case-insensitive.
pub(crate) fn action_matches(pattern: &str, action: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let a: Vec<char> = action.to_ascii_lowercase().chars().collect();
    // Iterative glob with backtracking to the last star: linear enough for action strings.
    let (mut pi, mut ai) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ai < a.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ai));
            pi += 1;
        } else if pi < p.len() && p[pi] == a[ai] {
            pi += 1;
            ai += 1;
        } else if let Some((sp, sa)) = star {
            pi = sp + 1;
            ai = sa + 1;
            star = Some((sp, sa + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether the principal's role grants `action` (some action matches, no notAction does).
pub(crate) fn allows(principal: &Principal, action: &str) -> bool {
    principal.actions.iter().any(|p| action_matches(p, action))
        && !principal.not_actions.iter().any(|p| action_matches(p, action))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let lb = "Microsoft.Network/loadBalancers/read";
        assert!(action_matches("*", lb));
        assert!(action_matches("*/read", lb));
        assert!(action_matches("microsoft.network/*", lb));
        assert!(action_matches("Microsoft.Network/*/read", lb));
        assert!(action_matches(lb, &lb.to_uppercase()));
        assert!(!action_matches("*/write", lb));
        assert!(!action_matches("Microsoft.Compute/*", lb));
        assert!(!action_matches("Microsoft.Network/loadBalancers", lb));
        assert!(action_matches("a*b*c", "aXXbYYc"));
        assert!(!action_matches("a*b*c", "aXXbYY"));
    }
}
