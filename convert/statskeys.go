package convert

// StatsKeys lists, without repeats and in tensor order, the calibration
// statistics (CalibOptions.Keys) that low-rank setting l reads on tensors.
func StatsKeys(tensors []*TensorDesc, l LowRank) ([]string, error) {
	cands, err := LowRankCandidates(tensors, l)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var keys []string
	for _, c := range cands {
		if !seen[c.StatsKey] {
			seen[c.StatsKey] = true
			keys = append(keys, c.StatsKey)
		}
	}
	return keys, nil
}
