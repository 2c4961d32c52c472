from voyager.cli import main

raise SystemExit(main())
