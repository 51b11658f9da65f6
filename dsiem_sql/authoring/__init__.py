"""Tools for directive authors: test cases (`dsiem-sql test`), starter cases
(`dsiem-sql test-init`), and the warnings of `dsiem-sql validate`."""
