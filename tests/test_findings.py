

def test_a_possessive_of_a_name_ending_in_s_takes_only_an_apostrophe():
    from gapscope.findings import possessive

    # the internals summaries read "alerts's held-out emails"
    assert possessive("alerts") == "alerts'"
    assert possessive("corporate") == "corporate's"


def test_within_a_severity_kinds_take_turns_each_in_its_own_score_order():
    from gapscope.findings import Finding, rank

    # a gap's score is an F1 drop (0.3-0.96), a shortcut's a product of shares (~0.2), an attention
    # finding's an enrichment (~4): sorted by score together, the unit decided the order
    gaps = [Finding("generalization_gap", "medium", f"gap {i}", "s", score=0.9 - i / 10) for i in range(4)]
    shortcuts = [Finding("shortcut", "medium", f"shortcut {i}", "s", score=0.2 - i / 100) for i in range(2)]
    attention = [Finding("shortcut_attention", "medium", "attention", "s", score=4.0)]
    high = Finding("label_noise", "high", "noise", "s", score=0.01)
    unknown = Finding("a_new_kind", "medium", "new", "s", score=99.0)
    got = [f.title for f in rank([*shortcuts, unknown, *attention, *gaps, high])]
    assert got == ["noise", "gap 0", "shortcut 0", "attention", "new", "gap 1", "shortcut 1", "gap 2", "gap 3"]
    # one kind alone keeps its score order (validate reads a cell's shortcut findings this way)
    assert [f.title for f in rank(list(reversed(gaps)))] == ["gap 0", "gap 1", "gap 2", "gap 3"]
    assert rank([]) == []
