from scim_server.cli import main

raise SystemExit(main())
