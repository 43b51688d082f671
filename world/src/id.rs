//! ARM resource ids: parsing and case-insensitive comparison.
//!
//! ARM ids look like `/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{subtype}/{subname}]...`.
//! Casing is not stable across APIs (`resourceGroups` vs `resourcegroups`, `Microsoft.Compute` vs
//! `microsoft.Compute` in VMSS NIC ids), so every comparison goes through [`id_key`].

/// The key under which an id is compared and indexed: ARM ids are case-insensitive.
pub fn id_key(id: &str) -> String {
    id.trim_end_matches('/').to_ascii_lowercase()
}

/// A parsed ARM resource id. Segments keep the casing they arrived with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceId {
    /// The id as given.
    pub raw: String,
    pub subscription: Option<String>,
    pub resource_group: Option<String>,
    /// Provider namespace, e.g. `Microsoft.Network`.
    pub provider: Option<String>,
    /// `(type, name)` pairs after the provider: `[("loadBalancers","kubernetes"),("frontendIPConfigurations","a1b2")]`.
    pub types: Vec<(String, String)>,
}

impl ResourceId {
    /// Parses an id; returns `None` when it does not start with `/subscriptions/`.
    pub fn parse(id: &str) -> Option<ResourceId> {
        let segs: Vec<&str> = id.trim_matches('/').split('/').collect();
        if segs.len() < 2 || !segs[0].eq_ignore_ascii_case("subscriptions") || segs[1].is_empty() {
            return None;
        }
        let mut out = ResourceId {
            raw: id.to_string(),
            subscription: Some(segs[1].to_string()),
            resource_group: None,
            provider: None,
            types: Vec::new(),
        };
        let mut i = 2;
        if i + 1 < segs.len() && segs[i].eq_ignore_ascii_case("resourceGroups") {
            out.resource_group = Some(segs[i + 1].to_string());
            i += 2;
        }
        if i + 1 < segs.len() && segs[i].eq_ignore_ascii_case("providers") {
            out.provider = Some(segs[i + 1].to_string());
            i += 2;
            while i < segs.len() {
                let t = segs[i].to_string();
                let n = segs.get(i + 1).map(|s| s.to_string()).unwrap_or_default();
                out.types.push((t, n));
                i += 2;
            }
        }
        Some(out)
    }

    /// The full resource type, e.g. `Microsoft.Network/loadBalancers/frontendIPConfigurations`.
    pub fn full_type(&self) -> Option<String> {
        let p = self.provider.as_ref()?;
        let mut s = p.clone();
        for (t, _) in &self.types {
            s.push('/');
            s.push_str(t);
        }
        Some(s)
    }

    /// The last name segment (the resource's own name).
    pub fn name(&self) -> Option<&str> {
        self.types.last().map(|(_, n)| n.as_str())
    }

    /// The id of the top-level resource (provider + first type/name).
    pub fn top_level(&self) -> Option<String> {
        let (t, n) = self.types.first()?;
        Some(format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{}/{}/{}",
            self.subscription.as_deref()?,
            self.resource_group.as_deref()?,
            self.provider.as_deref()?,
            t,
            n
        ))
    }

    /// The name of the child of the given type (case-insensitive), e.g. `virtualMachines` → `3`.
    pub fn child(&self, type_name: &str) -> Option<&str> {
        self.types
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(type_name))
            .map(|(_, n)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vmss_nic_ipconfig_id() {
        let id = "/subscriptions/s1/resourceGroups/MC_rg/providers/microsoft.Compute/virtualMachineScaleSets/aks-np/virtualMachines/3/networkInterfaces/nic/ipConfigurations/ipconfig1";
        let p = ResourceId::parse(id).unwrap();
        assert_eq!(p.subscription.as_deref(), Some("s1"));
        assert_eq!(p.resource_group.as_deref(), Some("MC_rg"));
        assert_eq!(p.provider.as_deref(), Some("microsoft.Compute"));
        assert_eq!(p.child("virtualmachines"), Some("3"));
        assert_eq!(p.name(), Some("ipconfig1"));
        assert_eq!(
            p.top_level().unwrap(),
            "/subscriptions/s1/resourceGroups/MC_rg/providers/microsoft.Compute/virtualMachineScaleSets/aks-np"
        );
        assert_eq!(
            p.full_type().unwrap(),
            "microsoft.Compute/virtualMachineScaleSets/virtualMachines/networkInterfaces/ipConfigurations"
        );
    }

    #[test]
    fn rejects_non_arm_ids_and_handles_group_ids() {
        assert!(ResourceId::parse("azure:///x").is_none());
        assert!(ResourceId::parse("").is_none());
        let rg = ResourceId::parse("/subscriptions/s/resourcegroups/rg1").unwrap();
        assert_eq!(rg.resource_group.as_deref(), Some("rg1"));
        assert!(rg.provider.is_none());
        assert_eq!(id_key("/Subscriptions/A/"), "/subscriptions/a");
    }
}
