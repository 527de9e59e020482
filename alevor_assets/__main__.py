from alevor_assets.cli import main

raise SystemExit(main())
