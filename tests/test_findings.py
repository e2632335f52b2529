

def test_a_possessive_of_a_name_ending_in_s_takes_only_an_apostrophe():
    from gapscope.findings import possessive

    # the internals summaries read "alerts's held-out emails"
    assert possessive("alerts") == "alerts'"
    assert possessive("corporate") == "corporate's"
