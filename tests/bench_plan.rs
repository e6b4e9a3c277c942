//! The plan and what feeds it, from outside the crate: the scenarios'
//! time budget and order, the flags' parsers, the capacity search on
//! synthetic latency curves, a search's target and the floor's rule, the
//! targets' columns, and the plan run cell by cell without a server.

mod scenarios {
    use servelab::bench::scenarios::*;
    use std::time::Duration;

    fn all() -> Vec<&'static Scenario> {
        SCENARIOS.iter().collect()
    }

    #[test]
    fn the_time_budget_holds_with_every_model() {
        let models = servelab::models::Model::ALL.len();
        let default = Plan::new(&all(), models, Profile::Default, Overrides::default()).estimate();
        assert!(default <= Duration::from_secs(360), "{default:?}");
        let quick =
            Plan::new(&quick_set(), models, Profile::Quick, Overrides::default()).estimate();
        assert!(quick <= Duration::from_secs(60), "{quick:?}");
        let full = Plan::new(&all(), models, Profile::Full, Overrides::default()).estimate();
        assert!(full > default);
    }

    #[test]
    fn servers_alternate_and_seed_comes_first() {
        let chosen = vec![ScenarioId::Latency.scenario(), ScenarioId::Seed.scenario()];
        let plan = Plan::new(&chosen, 2, Profile::Default, Overrides::default());
        let order: Vec<(ScenarioId, usize, u32)> = plan
            .cells
            .iter()
            .map(|c| (c.scenario.id, c.server, c.run))
            .collect();
        assert_eq!(
            &order[..4],
            &[
                (ScenarioId::Seed, 0, 1),
                (ScenarioId::Seed, 1, 1),
                (ScenarioId::Seed, 0, 2),
                (ScenarioId::Seed, 1, 2)
            ]
        );
        assert_eq!(order.iter().filter(|o| o.0 == ScenarioId::Seed).count(), 6);
        assert_eq!(
            order.iter().filter(|o| o.0 == ScenarioId::Latency).count(),
            8
        );
        assert!(order[6..].iter().all(|o| o.0 == ScenarioId::Latency));
    }

    #[test]
    fn overrides_and_dependencies() {
        let over = Overrides {
            runs: Some(2),
            duration: Some(Duration::from_millis(100)),
            warmup: Some(Duration::from_millis(10)),
            ..Overrides::default()
        };
        let plan = Plan::new(
            &[ScenarioId::Connections.scenario()],
            1,
            Profile::Full,
            over,
        );
        assert_eq!(plan.cells.len(), 10);
        assert!(plan
            .cells
            .iter()
            .all(|c| c.duration == Duration::from_millis(100)
                && c.warmup == Duration::from_millis(10)));
        let mut chosen = vec![ScenarioId::Slow.scenario()];
        assert_eq!(with_dependencies(&mut chosen), [ScenarioId::Seed]);
        assert_eq!(chosen[0].id, ScenarioId::Seed);
        assert!(with_dependencies(&mut chosen).is_empty());
        let mut chosen = vec![ScenarioId::Churn.scenario()];
        assert!(with_dependencies(&mut chosen).is_empty());
        let mut chosen = vec![ScenarioId::Spread.scenario()];
        use ScenarioId::*;
        assert_eq!(
            with_dependencies(&mut chosen),
            [Floor, Seed, Work, Capacity]
        );
        let ids: Vec<_> = chosen.iter().map(|s| s.id).collect();
        assert_eq!(ids, [Floor, Seed, Work, Capacity, Spread]);
    }

    #[test]
    fn the_floor_runs_against_the_responder_alone_and_cores_up_to_the_server_cpus() {
        let chosen = [ScenarioId::Floor.scenario(), ScenarioId::Cores.scenario()];
        let plan = Plan::new(&chosen, 3, Profile::Default, Overrides::default());
        let floor: Vec<_> = plan
            .cells
            .iter()
            .filter(|c| c.scenario.id == ScenarioId::Floor)
            .collect();
        assert_eq!(floor.len(), ScenarioId::Floor.scenario().points.len());
        assert!(floor.iter().all(|c| c.server == 3));
        let cores = |cpus| {
            let over = Overrides {
                server_cpus: Some(cpus),
                ..Overrides::default()
            };
            Plan::new(&chosen[1..], 3, Profile::Default, over)
                .cells
                .iter()
                .map(|c| c.point().cpus.unwrap())
                .max()
        };
        assert_eq!(cores(1), Some(1));
        assert_eq!(cores(6), Some(4));
        assert_eq!(cores(16), Some(16));
    }

    #[test]
    fn quick_runs_fewer_points_unless_scenarios_are_chosen_and_capacity_probes() {
        let capacity = [ScenarioId::Capacity.scenario()];
        let quick = Plan::new(&capacity, 2, Profile::Quick, Overrides::default());
        assert_eq!(quick.cells.len(), 2 * 2);
        assert_eq!(quick.cells[0].probes, CAPACITY_PROBES[0]);
        let c = &quick.cells[0];
        assert_eq!(
            c.estimate(),
            (c.warmup + c.duration) * c.probes as u32 + CELL_OVERHEAD
        );
        let chosen = Overrides {
            chosen: true,
            ..Overrides::default()
        };
        let all = Plan::new(&capacity, 2, Profile::Quick, chosen);
        assert_eq!(all.cells.len(), 2 * capacity[0].points.len());
        // Every scenario is in a quick run, capacity with the search that
        // spread scales from.
        assert_eq!(quick_set().len(), SCENARIOS.len());
        let spread_base = ScenarioId::Capacity.scenario().with_work(Some(SPREAD_WORK));
        let quick_capacity: Vec<_> = capacity[0]
            .ids()
            .filter(|at| capacity[0].quick.runs(at.index))
            .collect();
        assert!(quick_capacity.contains(&spread_base.unwrap()));
        // ... and the work cell each quick capacity search starts from.
        let work = ScenarioId::Work.scenario();
        for at in quick_capacity.iter().filter_map(|at| at.point().work) {
            let peak = work.with_work(Some(at)).unwrap();
            assert!(work.quick.runs(peak.index), "{at}");
        }
    }

    #[test]
    fn ids_follow_the_declarations_and_named_points_their_labels() {
        use clap::ValueEnum;
        assert_eq!(ScenarioId::value_variants().len(), SCENARIOS.len());
        for (id, s) in ScenarioId::value_variants().iter().zip(SCENARIOS) {
            assert_eq!(*id, s.id);
            assert_eq!(id.scenario().id, *id);
            assert!(!s.points.is_empty());
            let json = serde_json::to_string(id).unwrap();
            assert_eq!(json, format!("{:?}", id.name()));
        }
        for (at, label) in [
            (SEED, "100 connections"),
            (PIPELINE_16, "depth 16"),
            (LATENCY_75, "75%"),
            (SLOW, "50 slowloris"),
            (CHURN, "close per request"),
            (NOISE, "10 noisy of 100"),
            (IDLE_10K, "10,000"),
        ] {
            assert_eq!(at.label(), label);
        }
    }
}

mod args {
    use servelab::bench::args::*;

    #[test]
    fn server_specs() {
        assert_eq!(
            parse_server("nginx=nginx -p {port}").unwrap(),
            ("nginx".to_string(), "nginx -p {port}".to_string())
        );
        assert!(parse_server("nginx").is_err());
        assert!(parse_server("=cmd {port}").is_err());
        assert!(parse_server("a b=cmd {port}").is_err());
        assert!(parse_server("x=cmd").unwrap_err().contains("{port}"));
        assert!(parse_server("event=cmd {port}").is_err());
    }
}

mod capacity {
    use servelab::bench::capacity::*;
    use std::time::Duration;

    const TARGET: Duration = Duration::from_millis(1);

    /// A server of capacity `mu` req/s whose p99 grows as an M/M/1 queue's
    /// does: ln(100) / (mu - rate), plus a fixed floor; past `mu` it
    /// answers only `mu` of the rate and its p99 explodes.
    fn queue(mu: f64, floor: Duration) -> impl Fn(f64) -> Probe {
        move |rate| {
            if rate >= mu {
                return Probe {
                    rate,
                    p99: Some(Duration::from_secs(1)),
                    answered: mu / rate,
                };
            }
            let wait = 100f64.ln() / (mu - rate);
            Probe {
                rate,
                p99: Some(floor + Duration::from_secs_f64(wait)),
                answered: 1.0,
            }
        }
    }

    /// The rate where the queue's p99 equals the target.
    fn knee(mu: f64, floor: Duration) -> f64 {
        mu - 100f64.ln() / (TARGET - floor).as_secs_f64()
    }

    #[test]
    fn finds_the_knee_within_its_step() {
        for (mu, floor_us) in [(100_000.0, 100), (20_000.0, 300), (300_000.0, 50)] {
            let floor = Duration::from_micros(floor_us);
            let plan = Plan {
                target: TARGET,
                ceiling: mu * 1.2,
                probes: 12,
                precision: 0.02,
            };
            let found = search(plan, queue(mu, floor));
            let (held, failed) = (found.capacity.unwrap(), found.failed.unwrap());
            let knee = knee(mu, floor);
            assert!(
                held <= knee && knee <= failed,
                "{held} .. {failed} misses {knee}"
            );
            assert!(
                failed - held <= 0.02 * failed,
                "step {held} .. {failed} too wide"
            );
            assert!(found.probes.len() <= 12);
            // Every probe that held is below the knee, every other above.
            for p in &found.probes {
                assert_eq!(p.holds(TARGET), p.rate <= knee, "{p:?}");
            }
        }
    }

    #[test]
    fn a_target_below_the_floor_finds_nothing_in_two_probes() {
        let plan = Plan {
            target: TARGET,
            ceiling: 100_000.0,
            probes: 10,
            precision: 0.02,
        };
        let found = search(plan, queue(100_000.0, Duration::from_millis(2)));
        assert_eq!(found.capacity, None);
        assert_eq!(found.probes.len(), 2);
    }

    /// One stall in the lowest probe's window: it is probed again, and the
    /// search goes on from there.
    #[test]
    fn a_stall_in_the_lowest_probe_is_probed_again() {
        let plan = Plan {
            target: TARGET,
            ceiling: 120_000.0,
            probes: 12,
            precision: 0.02,
        };
        let calm = queue(100_000.0, Duration::from_micros(100));
        let mut first = true;
        let found = search(plan, |rate| {
            let mut p = calm(rate);
            if std::mem::take(&mut first) {
                p.p99 = Some(Duration::from_millis(100));
            }
            p
        });
        assert!(!found.probes[0].holds(TARGET) && found.probes[1].holds(TARGET));
        assert_eq!(found.probes[0].rate, found.probes[1].rate);
        let knee = knee(100_000.0, Duration::from_micros(100));
        assert!(found.capacity.unwrap() <= knee && knee <= found.failed.unwrap());
    }

    #[test]
    fn a_server_that_holds_at_the_ceiling_is_given_the_ceiling() {
        let plan = Plan {
            target: TARGET,
            ceiling: 10_000.0,
            probes: 10,
            precision: 0.02,
        };
        let found = search(plan, queue(1_000_000.0, Duration::ZERO));
        assert_eq!((found.capacity, found.failed), (Some(10_000.0), None));
        assert_eq!(found.probes.len(), 2);
    }

    /// Shedding load keeps the p99 of the few answered low: it fails.
    #[test]
    fn a_probe_that_left_requests_unanswered_does_not_hold() {
        let shed = Probe {
            rate: 1000.0,
            p99: Some(Duration::from_micros(10)),
            answered: 0.5,
        };
        assert!(!shed.holds(TARGET));
        let none = Probe {
            rate: 1000.0,
            p99: None,
            answered: 1.0,
        };
        assert!(!none.holds(TARGET));
    }

    #[test]
    fn the_probes_spent_bound_the_search() {
        let plan = Plan {
            target: TARGET,
            ceiling: 120_000.0,
            probes: 4,
            precision: 0.0,
        };
        let found = search(plan, queue(100_000.0, Duration::from_micros(100)));
        assert_eq!(found.probes.len(), 4);
        assert!(found.capacity.unwrap() < found.failed.unwrap());
    }
}

mod given {
    use servelab::bench::floor::Floor;
    use servelab::bench::given::*;
    use std::time::Duration;

    #[test]
    fn targets_follow_the_workload_and_stay_above_the_floor() {
        let ms = Duration::from_millis;
        assert_eq!(nominal_target(None), ms(1));
        assert_eq!(nominal_target(Some("cpu:50us")), Duration::from_micros(500));
        assert_eq!(nominal_target(Some("wait:1ms")), ms(10));
        assert_eq!(nominal_target(Some("await:1ms")), ms(10));
        assert_eq!(
            nominal_target(Some("cpu:exp(50us)")),
            Duration::from_micros(500)
        );
        assert_eq!(nominal_target(Some("cpu:10us|1ms@1%")), ms(2));
        let low = Floor {
            closed_p99: None,
            open: vec![(1000.0, 100.0)],
        };
        let t = target(None, Some(&low));
        assert_eq!(t.target, ms(1));
        assert_eq!(t.floor_p99, Some(Duration::from_micros(100)));
        let high = Floor {
            closed_p99: None,
            open: vec![(1000.0, 1500.0)],
        };
        let t = target(None, Some(&high));
        assert_eq!(t.target, ms(3));
        assert_eq!(t.nominal, ms(1));
        assert_eq!(target(Some("wait:1ms"), Some(&high)).target, ms(10));
    }
}

mod floor {
    use servelab::bench::floor::*;

    #[test]
    fn the_floor_at_a_rate_is_the_next_measured_rate_up() {
        let f = Floor {
            closed_p99: Some(300.0),
            open: vec![(10_000.0, 50.0), (100_000.0, 80.0), (200_000.0, 200.0)],
        };
        assert_eq!(f.p99_at(None), Some(300.0));
        assert_eq!(f.p99_at(Some(5_000.0)), Some(50.0));
        assert_eq!(f.p99_at(Some(10_000.0)), Some(50.0));
        assert_eq!(f.p99_at(Some(10_001.0)), Some(80.0));
        assert_eq!(f.p99_at(Some(1e9)), Some(200.0));
        assert_eq!(f.lowest_p99(), Some(50.0));
        assert!(f.within(100.0, 170.0, Some(50_000.0)));
        assert!(!f.within(100.0, 190.0, Some(50_000.0)));
        assert!(!Floor::default().within(1.0, 1.0, None));
    }

    #[test]
    fn a_stall_in_the_lowest_rates_window_does_not_raise_the_floor() {
        let f = Floor {
            closed_p99: Some(300.0),
            open: vec![(10_000.0, 92_800.0), (100_000.0, 28.0), (200_000.0, 200.0)],
        };
        assert_eq!(f.lowest_p99(), Some(28.0));
        let closed_only = Floor {
            closed_p99: Some(300.0),
            open: Vec::new(),
        };
        assert_eq!(closed_only.lowest_p99(), Some(300.0));
    }
}

mod targets {
    use servelab::bench::columns::{columns, Read, Unit};
    use servelab::bench::targets::*;

    #[test]
    fn every_target_reads_a_median_column_of_its_scenario() {
        let mut names: Vec<&str> = SETS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SETS.len());
        for set in SETS {
            assert!(!set.targets.is_empty());
            for t in set.targets {
                let shown = columns(t.at.scenario);
                let columns = std::iter::once(t.column).chain(t.only_if.iter().map(|c| c.column));
                for c in columns {
                    assert!(shown.contains(&c), "{}: {c:?}", t.label);
                    assert!(matches!(c.metric().read, Read::Median(_)), "{}", t.label);
                }
            }
        }
    }

    #[test]
    fn bounds() {
        assert!(Bound::AtMost(1.0).admits(1.0) && !Bound::AtMost(1.0).admits(1.01));
        assert!(Bound::AtLeast(2.0).admits(2.0) && !Bound::AtLeast(2.0).admits(1.99));
        assert!(Bound::Below(1.0).admits(0.99) && !Bound::Below(1.0).admits(1.0));
        let about = Bound::Within(4.0, 0.25);
        assert!(about.admits(3.0) && about.admits(5.0) && !about.admits(5.1));
        assert_eq!(about.text(Unit::Times), "within 25% of 4.000×");
    }
}

mod runner {
    use servelab::bench::runner::*;

    #[test]
    fn an_external_server_may_die_of_the_sigterm() {
        use std::os::unix::process::ExitStatusExt;
        use std::process::ExitStatus;
        // Raw wait statuses: the low 7 bits are the signal, the next byte
        // the exit code.
        let exit = |code: i32| ExitStatus::from_raw(code << 8);
        let killed = |signal: i32| ExitStatus::from_raw(signal);
        assert!(stopped_cleanly(exit(0), false));
        assert!(stopped_cleanly(exit(0), true));
        assert!(!stopped_cleanly(exit(1), true));
        assert!(stopped_cleanly(killed(libc::SIGTERM), true));
        assert!(
            !stopped_cleanly(killed(libc::SIGTERM), false),
            "a model handles SIGTERM"
        );
        assert!(!stopped_cleanly(killed(libc::SIGKILL), true));
        assert!(!stopped_cleanly(killed(libc::SIGSEGV), true));
    }
}

mod malformed {
    use servelab::load::MALFORMED;

    #[test]
    fn malformed_requests_are_what_they_say() {
        let big = (MALFORMED[2].bytes)();
        assert!(big.len() > 16 * 1024);
        assert!((MALFORMED[1].bytes)()
            .windows(17)
            .any(|w| w == b"Transfer-Encoding"));
    }
}

mod plan_runs {
    use servelab::bench::given::Given;
    use servelab::bench::progress::Progress;
    use servelab::bench::results::{CellResult, OtherLoad, Outcome, ProcSample, ServerUsage};
    use servelab::bench::runner::{run_plan, START_ATTEMPTS};
    use servelab::bench::scenarios::{Overrides, Plan, PlannedCell, Profile, ScenarioId};
    use servelab::procfs::CpuTimes;
    use servelab::units::utc_now;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    fn plan(scenarios: &[ScenarioId], servers: usize) -> Plan {
        let chosen: Vec<_> = scenarios.iter().map(|s| s.scenario()).collect();
        Plan::new(&chosen, servers, Profile::Default, Overrides::default())
    }

    type Seen = Vec<(ScenarioId, usize, String, u32)>;

    /// Runs `plan` starting nothing: the cells it was given, in order, and
    /// their planned time; the servers named in `broken` fail to start, and
    /// the interrupt flag rises after `interrupt_after` cells.
    fn run_mock(
        plan: &Plan,
        servers: &[&str],
        broken: &[&str],
        interrupt_after: Option<usize>,
    ) -> (Vec<CellResult>, Seen, Duration) {
        let flag = AtomicBool::new(false);
        let (mut seen, mut planned) = (Seen::new(), Duration::ZERO);
        let mut run = |cell: &PlannedCell, server: &str, _: &Given| {
            seen.push((cell.scenario.id, cell.point, server.to_string(), cell.run));
            planned += cell.estimate();
            if interrupt_after == Some(seen.len()) {
                flag.store(true, Ordering::Relaxed);
            }
            let mut r = CellResult::planned(cell, server, utc_now());
            if !broken.contains(&server) {
                return (r, None);
            }
            r.outcome = Outcome::Failed {
                reason: "the server exited before it was ready".to_string(),
            };
            (r, Some("exited before it was ready".to_string()))
        };
        let mut progress = Progress::new(plan.estimate());
        let cells = run_plan(plan, servers, &mut run, &flag, &mut progress);
        (cells, seen, planned)
    }

    #[test]
    fn the_plan_runs_every_cell_in_order_within_its_budget() {
        let plan = plan(&[ScenarioId::Seed, ScenarioId::Idle], 2);
        let (cells, seen, planned) = run_mock(&plan, &["a", "b"], &[], None);
        assert_eq!(cells.len(), plan.cells.len());
        assert_eq!(seen.len(), plan.cells.len());
        assert_eq!(planned, plan.estimate());
        let order: Vec<_> = seen.iter().map(|s| (s.0, s.2.as_str(), s.3)).collect();
        assert_eq!(
            &order[..4],
            &[
                (ScenarioId::Seed, "a", 1),
                (ScenarioId::Seed, "b", 1),
                (ScenarioId::Seed, "a", 2),
                (ScenarioId::Seed, "b", 2)
            ]
        );
        assert!(cells.iter().all(CellResult::measured));
    }

    #[test]
    fn an_interrupt_ends_the_plan_after_the_cell_under_way() {
        let plan = plan(&[ScenarioId::Seed, ScenarioId::Churn], 2);
        let (cells, seen, _) = run_mock(&plan, &["a", "b"], &[], Some(3));
        assert_eq!(seen.len(), 3);
        assert_eq!(cells.len(), 3);
        assert!(cells.len() < plan.cells.len());
    }

    #[test]
    fn a_server_that_fails_to_start_twice_is_not_tried_again() {
        let plan = plan(&[ScenarioId::Seed, ScenarioId::Connections], 2);
        let (cells, seen, _) = run_mock(&plan, &["ok", "broken"], &["broken"], None);
        assert_eq!(cells.len(), plan.cells.len());
        let tried = seen.iter().filter(|s| s.2 == "broken").count();
        assert_eq!(tried, START_ATTEMPTS);
        let broken: Vec<&CellResult> = cells.iter().filter(|c| c.server == "broken").collect();
        assert!(broken.iter().all(|c| !c.measured()));
        match &broken.last().unwrap().outcome {
            Outcome::Failed { reason } => assert!(
                reason.starts_with("not started: it failed to start 2 times (exited before"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(cells
            .iter()
            .filter(|c| c.server == "ok")
            .all(CellResult::measured));
    }

    #[test]
    fn other_load_is_what_neither_the_bench_nor_its_servers_used() {
        let before = CpuTimes {
            busy_s: 10.0,
            steal_s: 1.0,
            total_s: 100.0,
        };
        let after = CpuTimes {
            busy_s: 18.0,
            steal_s: 1.5,
            total_s: 120.0,
        };
        let mut cell = CellResult::planned(
            &Plan::new(
                &[ScenarioId::Seed.scenario()],
                1,
                Profile::Quick,
                Overrides::default(),
            )
            .cells[0],
            "event",
            utc_now(),
        );
        let loaded = ProcSample {
            cpu_s: 3.0,
            ..ProcSample::default()
        };
        cell.server_usage = Some(ServerUsage::new(ProcSample::default(), 2.0, loaded, 1));
        // 8 s busy: 2 s the bench, 3 s the server, 3 s someone else.
        let o = OtherLoad::between(before, after, 2.0, &[cell.clone()]);
        assert!((o.other_share - 3.0 / 20.0).abs() < 1e-9, "{o:?}");
        assert!((o.steal_share - 0.5 / 20.0).abs() < 1e-9, "{o:?}");
        // Never below zero, whatever the clocks say.
        let o = OtherLoad::between(before, after, 7.0, &[cell]);
        assert_eq!(o.other_share, 0.0);
    }
}
