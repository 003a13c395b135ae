"""What a search may propose: GAMMA's genome space (:mod:`.space`: sampling, repair, decoding to
mappings), the divisor tables it draws tiles from (:mod:`.divisors`) and the fixed dataflow
templates (:mod:`.dataflows`)."""
