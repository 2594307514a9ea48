//! The verdict of one check, and how the misses found while running its
//! conversation become one. The type is the results crate's, which the
//! reports are written in.

pub use sockspec_results::Verdict;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::level::Level;
    use rstest::rstest;

    #[rstest]
    #[case(Level::Must, None, Verdict::Pass)]
    #[case(Level::Must, Some(Level::Must), Verdict::Fail)]
    #[case(Level::Must, Some(Level::Should), Verdict::Warn)]
    #[case(Level::Must, Some(Level::Info), Verdict::Pass)]
    #[case(Level::Should, Some(Level::Must), Verdict::Warn)]
    #[case(Level::Should, None, Verdict::Pass)]
    #[case(Level::Info, Some(Level::Must), Verdict::Info)]
    #[case(Level::Info, None, Verdict::Info)]
    fn a_miss_weighs_no_more_than_its_check(
        #[case] check: Level,
        #[case] miss: Option<Level>,
        #[case] expected: Verdict,
    ) {
        assert_eq!(Verdict::judge(check, miss), expected);
    }

    #[test]
    fn verdict_names_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.as_str()));
            assert_eq!(serde_json::from_str::<Verdict>(&json).unwrap(), v);
        }
    }
}
