"""What a job writes: results.json records and totals (:mod:`.records`), the console table and
progress bars (:mod:`.console`), the Pareto fronts file and plot (:mod:`.pareto`)."""
