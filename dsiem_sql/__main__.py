from dsiem_sql.shell.cli import main

main()
