//! How the bench's figures read and where they go, from outside the crate:
//! numbers, tables, spreads, the headline columns, the README block's
//! markers and the machine's own readings.

mod format {
    use servelab::bench::columns::Unit;
    use servelab::bench::format::*;
    use servelab::bench::results::Spread;

    #[test]
    fn numbers_read_well() {
        assert_eq!(rate(123_456.4), "123,456");
        assert_eq!(rate(12.34), "12.3");
        assert_eq!(count(10_000), "10,000");
        assert_eq!(count(999), "999");
        assert_eq!(micros(16.87), "16.9 µs");
        assert_eq!(micros(1234.0), "1.23 ms");
        assert_eq!(micros(2.5e6), "2.50 s");
        assert_eq!(bytes(8806.0), "8.6 KiB");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(percent(0.374), "37%");
        assert_eq!(times(4.7), "4.70×");
        assert_eq!(rate(f64::NAN), "–");
        assert_eq!(multiple(0.9749), "0.975×");
        let s = Spread::of(&[1.0, 2.0, 4.0]).unwrap();
        assert_eq!(spread(s, Unit::Times), "2.000× (1.000×–4.000×)");
        assert_eq!(number(9_900.0, Unit::Count), "9,900");
    }

    #[test]
    fn ticks() {
        assert_eq!(percentile_tick(1.0), "0%");
        assert_eq!(percentile_tick(10.0), "90%");
        assert_eq!(percentile_tick(1000.0), "99.9%");
        assert_eq!(axis(120_000.0), "120k");
        assert_eq!(axis(1_500_000.0), "1.5M");
        assert_eq!(axis(250.0), "250");
    }
}

mod table {
    use servelab::bench::export::table::*;

    #[test]
    fn markdown_and_terminal() {
        let mut t = Table::new(["server", "req/s"]);
        t.row(["a|b", "**1,000**"]);
        t.row(["c", ""]);
        assert_eq!(
            t.markdown(),
            "| server | req/s |\n|---|---|\n| a\\|b | **1,000** |\n| c |  |\n"
        );
        assert_eq!(Table::new(["", ""]).markdown(), "| | |\n|---|---|\n");
        let text = t.terminal();
        assert!(text.contains("server") && text.contains("a|b"));
        assert!(text.contains(" 1,000 ") && !text.contains("**"), "{text}");
        let widths: Vec<usize> = text.lines().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{text}");
    }
}

mod results {
    use servelab::bench::results::*;

    #[test]
    fn spreads() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (2.0, 1.0, 3.0, 3));
        assert_eq!(Spread::of(&[1.0, 4.0]).unwrap().median, 2.5);
        assert!(Spread::of(&[]).is_none());
        assert!(Spread::of(&[f64::NAN]).is_none());
        let old = Spread::of(&[100.0]).unwrap();
        let new = Spread::of(&[90.0, 110.0, 100.0]).unwrap();
        let r = new.over(old.median).unwrap();
        assert_eq!((r.median, r.min, r.max, r.runs), (1.0, 0.9, 1.1, 3));
        assert!(new.over(0.0).is_none());
    }

    #[test]
    fn reads_its_own_proc_figures() {
        let me = ProcSample::of(&servelab::procfs::tree(std::process::id()));
        assert!(me.processes >= 1);
        assert!(me.rss_kib > 0 && me.threads >= 1 && me.fds >= 3, "{me:?}");
    }
}

mod headline {
    use servelab::bench::columns::{Column, Read};
    use servelab::bench::headline::*;
    use servelab::bench::scenarios::ScenarioId;

    #[test]
    fn every_headline_column_reads_a_median_and_has_a_key() {
        for (c, _) in HEADLINE {
            assert!(matches!(c.metric().read, Read::Median(_)), "{c:?}");
            assert!(key(c)
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch == '_' || ch.is_ascii_digit()));
        }
        assert!(of(ScenarioId::Seed).contains(&Column::Rps));
        assert_eq!(of(ScenarioId::Idle), vec![Column::IdleRss]);
    }
}

mod columns {
    use servelab::bench::columns::*;
    use servelab::bench::scenarios::ScenarioId;

    #[test]
    fn every_scenario_has_columns_and_every_column_a_meaning() {
        for s in ScenarioId::all() {
            assert!(!columns(s).is_empty());
        }
        let mut every = ScenarioId::all().flat_map(columns_with_baseline);
        assert!(every.all(|c| !c.metric().about.is_empty()));
    }

    #[test]
    fn the_baseline_column_follows_every_server_cpu_column() {
        for s in ScenarioId::all() {
            let plain = columns(s);
            let with = columns_with_baseline(s);
            match plain.iter().position(|c| *c == Column::ServerCpu) {
                Some(i) => {
                    assert_eq!(with[i + 1], Column::BaselineCpu, "{s}");
                    assert_eq!(with.len(), plain.len() + 1);
                }
                None => assert_eq!(with, plain, "{s}"),
            }
        }
    }
}

mod readme {
    use servelab::bench::readme::*;

    fn doc() -> String {
        format!("# Title\n\nBefore.\n\n{BEGIN}\nold table\nold chart\n{END}\n\nAfter.\n")
    }

    fn main() -> Markers {
        Markers::of(None)
    }

    #[test]
    fn splice_replaces_only_the_block_and_is_idempotent() {
        let once = splice(&doc(), &main(), "new table\n").unwrap();
        assert_eq!(
            once,
            format!("# Title\n\nBefore.\n\n{BEGIN}\nnew table\n{END}\n\nAfter.\n")
        );
        assert_eq!(splice(&once, &main(), "new table\n").unwrap(), once);
        let (head, tail) = doc()
            .split_once(BEGIN)
            .map(|(h, t)| (h.to_string(), t.to_string()))
            .unwrap();
        assert!(once.starts_with(&head));
        assert!(once.ends_with(tail.split_once(END).unwrap().1));
        // A block without a final newline still leaves the end marker on its own line.
        assert!(splice(&doc(), &main(), "x")
            .unwrap()
            .contains(&format!("x\n{END}")));
    }

    #[test]
    fn splice_refuses_bad_markers() {
        assert!(splice("no markers", &main(), "x").is_err());
        assert!(splice(&format!("{END}\n{BEGIN}\n"), &main(), "x").is_err());
        assert!(splice(&format!("{BEGIN}\n{BEGIN}\n{END}\n"), &main(), "x").is_err());
    }

    #[test]
    fn named_blocks_are_separate_from_the_main_one() {
        let floor = Markers::of(Some("floor"));
        let other = Markers::of(Some("floor2"));
        let text = format!(
            "{BEGIN}\nmain\n{END}\n{}\nfloor\n{}\n{}\nfloor2\n{}\n",
            floor.begin, floor.end, other.begin, other.end
        );
        let once = splice(&text, &floor, "new floor\n").unwrap();
        assert_eq!(once, text.replace("\nfloor\n", "\nnew floor\n"));
        let main_only = splice(&text, &main(), "new main\n").unwrap();
        assert_eq!(main_only, text.replace("\nmain\n", "\nnew main\n"));
        let err = splice(&format!("{BEGIN}\n{END}\n"), &floor, "x").unwrap_err();
        assert!(err.contains("bench:begin:floor"), "{err}");
        assert!(floor.begin.contains("--readme-block floor"));
    }
}

mod machine {
    use servelab::bench::machine::*;

    #[test]
    fn detects_this_machine() {
        let m = Machine::detect(1024);
        assert!(m.cpus >= 1 && m.memory_bytes > 0, "{m:?}");
        assert!(!Build::detect().version.is_empty());
    }
}
