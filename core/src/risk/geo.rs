//! Coarse country coordinates for the impossible-travel rule: one point per country (roughly
//! its centre, or its main population centre for large countries), to a degree or so. A
//! distance between two countries is therefore an approximation that can be off by several
//! hundred kilometres; the travel rule only fires above [`super::rules::RiskRules`]'s minimum
//! distance, so neighbours never trip it. Countries not listed have no coordinates and never
//! count as impossible travel.

/// `(ISO 3166-1 alpha-2, latitude, longitude)`, sorted by code.
const POINTS: &[(&str, f64, f64)] = &[
    ("AE", 24.5, 54.4),
    ("AR", -34.6, -58.4),
    ("AT", 47.5, 14.6),
    ("AU", -33.9, 151.2),
    ("BD", 23.7, 90.4),
    ("BE", 50.8, 4.4),
    ("BG", 42.7, 23.3),
    ("BR", -23.5, -46.6),
    ("CA", 43.7, -79.4),
    ("CH", 46.8, 8.2),
    ("CL", -33.4, -70.6),
    ("CN", 31.2, 121.5),
    ("CO", 4.7, -74.1),
    ("CZ", 49.8, 15.5),
    ("DE", 51.2, 10.4),
    ("DK", 56.0, 10.0),
    ("EE", 58.6, 25.0),
    ("EG", 30.0, 31.2),
    ("ES", 40.4, -3.7),
    ("FI", 61.9, 25.7),
    ("FR", 46.6, 2.2),
    ("GB", 52.4, -1.5),
    ("GR", 38.0, 23.7),
    ("HK", 22.3, 114.2),
    ("HR", 45.1, 15.2),
    ("HU", 47.2, 19.5),
    ("ID", -6.2, 106.8),
    ("IE", 53.3, -7.7),
    ("IL", 31.8, 35.0),
    ("IN", 20.6, 78.9),
    ("IS", 64.1, -21.9),
    ("IT", 42.8, 12.6),
    ("JP", 35.7, 139.7),
    ("KE", -1.3, 36.8),
    ("KR", 37.6, 127.0),
    ("LT", 55.2, 23.9),
    ("LU", 49.8, 6.1),
    ("LV", 56.9, 24.6),
    ("MA", 33.6, -7.6),
    ("MX", 19.4, -99.1),
    ("MY", 3.1, 101.7),
    ("NG", 6.5, 3.4),
    ("NL", 52.1, 5.3),
    ("NO", 60.5, 8.5),
    ("NZ", -36.8, 174.8),
    ("PE", -12.0, -77.0),
    ("PH", 14.6, 121.0),
    ("PK", 24.9, 67.0),
    ("PL", 51.9, 19.1),
    ("PT", 39.4, -8.2),
    ("RO", 45.9, 25.0),
    ("RS", 44.0, 20.9),
    ("RU", 55.8, 37.6),
    ("SA", 24.7, 46.7),
    ("SE", 60.1, 18.6),
    ("SG", 1.35, 103.8),
    ("SI", 46.2, 14.9),
    ("SK", 48.7, 19.7),
    ("TH", 13.8, 100.5),
    ("TR", 39.9, 32.9),
    ("TW", 25.0, 121.5),
    ("UA", 50.5, 30.5),
    ("US", 39.8, -98.6),
    ("VN", 21.0, 105.8),
    ("ZA", -26.2, 28.0),
];

/// Mean Earth radius in kilometres.
const EARTH_RADIUS_KM: f64 = 6371.0;

/// The coarse point of `country` (alpha-2, any case), if listed.
pub fn point(country: &str) -> Option<(f64, f64)> {
    let code = country.to_ascii_uppercase();
    POINTS
        .binary_search_by(|(c, _, _)| (*c).cmp(code.as_str()))
        .ok()
        .and_then(|i| POINTS.get(i))
        .map(|(_, lat, lon)| (*lat, *lon))
}

/// Great-circle distance in kilometres between two countries' points; `None` when either is
/// not listed.
pub fn distance_km(a: &str, b: &str) -> Option<f64> {
    let (lat1, lon1) = point(a)?;
    let (lat2, lon2) = point(b)?;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    Some(2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_so_lookups_find_every_entry() {
        for w in POINTS.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
        for (code, _, _) in POINTS {
            assert!(point(code).is_some(), "{code}");
        }
        assert!(point("de").is_some());
        assert!(point("XX").is_none());
    }

    #[test]
    fn distances_are_coarse_but_of_the_right_size() {
        let de_au = distance_km("DE", "AU").unwrap_or_default();
        assert!((15_000.0..17_500.0).contains(&de_au), "{de_au}");
        let de_fr = distance_km("DE", "FR").unwrap_or_default();
        assert!((400.0..1_000.0).contains(&de_fr), "{de_fr}");
        assert_eq!(distance_km("DE", "DE"), Some(0.0));
        assert_eq!(distance_km("DE", "XX"), None);
    }
}
