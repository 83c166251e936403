"""Second-order pieces of the cross-entropy, for the closed-form products of
the generalised linear models (hyper-cleaning, regularization selection).

For logits ``z = W a`` of one sample, the cross-entropy's Hessian in ``z``
is ``diag(p) - p p^T`` with ``p = softmax(z)`` (``p (1 - p)`` for the
logistic loss of one score), so a Hessian-vector product in ``W`` costs
one product with the data for the logits, one for the direction's logits
and one with its transpose: three, where reverse-over-reverse automatic
differentiation takes four (Griewank and Walther, *Evaluating Derivatives*,
2008, Section 4.6).
"""
import torch


def class_probabilities(logits):
    """softmax of each row; the sigmoid for a single column of scores."""
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)


def cross_entropy_curvature(probabilities, logit_direction):
    """Each row's cross-entropy Hessian in the logits applied to the row of
    ``logit_direction``: ``p * d - p (p . d)``, or ``p (1 - p) d`` for a
    single column of scores."""
    if probabilities.shape[1] == 1:
        return probabilities * (1 - probabilities) * logit_direction
    weighted = probabilities * logit_direction
    return weighted - probabilities * weighted.sum(dim=1, keepdim=True)


def cross_entropy_residual(probabilities, labels):
    """d CE / d logits of each row: ``p - onehot(label)`` (``p - label``
    for a single column of scores)."""
    if probabilities.shape[1] == 1:
        return probabilities - labels.to(probabilities.dtype)[:, None]
    residual = probabilities.clone()
    residual[torch.arange(len(labels), device=labels.device), labels] -= 1
    return residual
