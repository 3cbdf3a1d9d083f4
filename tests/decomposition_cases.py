"""Fixed cases for contextual decomposition, shared by the tests and the benchmark's negation report."""

#: SST-2 dev sentences (verbatim) with "not" before a sentiment adjective, and that adjective
NEGATIONS = [
    ("slap her - she 's not funny ! ", "funny"),
    ("is due primarily to the perkiness of witherspoon ( who is always a joy to watch , even when her material is not first-rate ) ", "first-rate"),
    ("it 's not original enough . ", "original"),
    ("overlong and not well-acted , but ", "well-acted"),
    ("it 's also not smart or barbed enough for older viewers -- ", "smart"),
    ("s1m0ne 's satire is not subtle , but it is effective . ", "subtle"),
    ("simply not funny performers ", "funny"),
    ("on its own , it 's not very interesting . ", "interesting"),
    ("it falls far short of poetry , but it 's not bad prose ", "bad"),
    ("'s not that funny -- which is just generally insulting ", "funny"),
    ("but not great ) ", "great"),
    ("not as good as the full monty , but a really strong second effort . ", "good"),
    ("not good enough ", "good"),
    ("'s suspenseful enough for older kids but not too scary ", "scary"),
    ("'s probably not easy to make such a worthless film ... ", "easy"),
    ("'s not clear whether we 're supposed to shriek ", "clear"),
]
