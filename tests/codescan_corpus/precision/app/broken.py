def broken(:  # expect: FSA001
    return 1
