"""lowres.train: the LightningModule every fine-tuning study shares."""
from lowres import models, train


def test_module_trains_with_dropout_on_although_from_pretrained_returns_eval_mode():
    net = models.load_model("tiny-bert", "classification", num_labels=2)
    assert not net.training  # what transformers hands over; Lightning 2.6 does not switch it
    module = train.ClassificationModule(net)
    assert all(m.training for m in module.model.modules())
