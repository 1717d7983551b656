from edge.simulator.cli import main

raise SystemExit(main())
