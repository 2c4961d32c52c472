"""Report helpers: what the suites attach to the HTML report and Allure results."""
