"""Looking inside trained RNNs: gradient-flow diagnostics, neuron drawings and plots."""
