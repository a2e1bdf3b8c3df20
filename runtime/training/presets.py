"""Training configurations of the example gallery (resources/examples), so every example
file is a complete experiment: ``netbuilder train resources/examples/digits_cnn.json``.

Only the settings that differ from TrainConfig's defaults are listed; the files store the
full ``TrainConfig.to_dict()``.
"""
from __future__ import annotations

from typing import Any

from .config import TrainConfig

EXAMPLE_TRAINING: dict[str, dict[str, Any]] = {
    # two interleaved spirals: >= 99% training accuracy in about 30 epochs
    "mlp_spirals": dict(dataset="spirals", optimizer="adam", lr=0.01, batch_size=32,
                        epochs=40, val_split=0.2),
    # LeNet-style CNN on scikit-learn's 8x8 digits: ~98% validation accuracy in 10 epochs
    "digits_cnn": dict(dataset="digits", optimizer="adam", lr=0.003, batch_size=32, epochs=10,
                       val_split=0.2, early_stopping=4),
    # 8 hidden layers deep on the flattened digits: sigmoid (vanishing gradients) against
    # Dense -> BatchNorm -> ReLU; plain momentum SGD so the gradients are what moves
    "deep_sigmoid_mlp": dict(dataset="digits", optimizer="momentum", lr=0.05, batch_size=32,
                             epochs=10, val_split=0.2),
    "deep_relu_bn_mlp": dict(dataset="digits", optimizer="momentum", lr=0.05, batch_size=32,
                             epochs=10, val_split=0.2),
    # LeNet-5 (32x32 input) on the digits, resized from 8x8 to 32x32: ~97% in 3 epochs
    "lenet5": dict(dataset="digits?size=32", optimizer="adam", lr=0.002, batch_size=32,
                   epochs=10, val_split=0.2, early_stopping=4),
    # character LSTM on the bundled public-domain text (next-character prediction)
    "char_lstm": dict(dataset="text", optimizer="adam", lr=0.005, batch_size=32, epochs=20,
                      val_split=0.1, clip_norm=1.0, sample_length=200, temperature=0.8),
    # the same character model drawn as an LSTM cell (unrolled: slower per step)
    "char_lstm_cell": dict(dataset="text", optimizer="adam", lr=0.005, batch_size=32,
                           epochs=10, val_split=0.1, clip_norm=1.0, sample_length=200,
                           temperature=0.8),
    # a GRU cell drawn by hand, classifying 8-channel waves by their frequency
    "gru_cell": dict(dataset="waves", optimizer="adam", lr=0.005, batch_size=32, epochs=10,
                     val_split=0.2, clip_norm=1.0),
    # bidirectional GRU tagging every token (the tag is a fixed function of the token)
    "bigru_tagger": dict(dataset="tagging", optimizer="adam", lr=0.005, batch_size=32,
                         epochs=10, val_split=0.2, clip_norm=1.0),
    # encoder-decoder GRUs learning to reverse a token sequence (teacher forcing): 5..20
    # tokens over 9 symbols (ids 1..9 of the graph's 100), 20,000 sequences; warm-up then
    # cosine decay: ~98% validation accuracy (~96% of the non-padding tokens) in 12 epochs
    "seq2seq": dict(dataset="reverse?n=20000&vocab=10", optimizer="adam", lr=0.01,
                    batch_size=64, epochs=12, schedule="cosine", warmup_steps=300,
                    val_split=0.1, clip_norm=1.0),
    # the adding problem over 100 steps: hard for a plain RNN (long-range memory)
    "rnn_adding_problem": dict(dataset="adding", optimizer="adam", lr=0.001, batch_size=64,
                               epochs=20, val_split=0.1, clip_norm=1.0),
    # echo-state network: only the readout learns to predict the next value of a noisy sine
    "echo_state_sine": dict(dataset="sine", optimizer="adam", lr=0.01, batch_size=32,
                            epochs=10, val_split=0.2),
    # convolutions over token embeddings find the class keywords in a sequence
    "text_cnn": dict(dataset="keywords", optimizer="adam", lr=0.003, batch_size=32, epochs=10,
                     val_split=0.2),
    # an embedding trained with a triplet loss on Gaussian clusters
    "triplet_embedding": dict(dataset="triplets", optimizer="adam", lr=0.003, batch_size=32,
                              epochs=10, val_split=0.2),
    # 32x32 RGB networks on the bundled digits, resized and repeated to three channels
    "vgg_small": dict(dataset="digits?size=32&channels=3", optimizer="adam", lr=0.002,
                      batch_size=32, epochs=5, val_split=0.2, early_stopping=3),
    "resnet_small": dict(dataset="digits?size=32&channels=3", optimizer="adam", lr=0.002,
                         batch_size=32, epochs=5, val_split=0.2, early_stopping=3),
    "inception_small": dict(dataset="digits?size=32&channels=3", optimizer="adam", lr=0.002,
                            batch_size=32, epochs=5, val_split=0.2, early_stopping=3),
}


def example_training(stem: str) -> dict[str, Any] | None:
    """The full training section for example ``stem`` (None when it has no preset)."""
    preset = EXAMPLE_TRAINING.get(stem)
    return TrainConfig.from_dict(preset).to_dict() if preset is not None else None
