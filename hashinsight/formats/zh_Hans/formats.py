# Django's zh_Hans groups digits by four with no separator (12345678.90). Business and financial
# figures in mainland China are written with a comma every three digits (12,345,678.90), which is
# also what our English pages show, so amounts read the same in both languages.
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
