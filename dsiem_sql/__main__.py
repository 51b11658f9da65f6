from dsiem_sql.cli import main

main()
