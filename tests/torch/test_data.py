import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from learning_diagrams.core.errors import TypeMismatchError
from learning_diagrams.torch.data import DEFAULT_BATCH_SIZE, DataSource, batch_size


def batches(data, vertex):
    return DataSource(data, vertex).forever()


def test_a_dataloader_is_drawn_pass_after_pass():
    loader = DataLoader(TensorDataset(torch.arange(5)), batch_size=2)
    draw = batches(loader, "N")
    sizes = [len(next(draw)[0]) for _ in range(6)]
    assert sizes == [2, 2, 1, 2, 2, 1]


def test_a_map_style_dataset_is_wrapped_in_a_dataloader():
    draw = batches(TensorDataset(torch.arange(100)), "N")
    assert len(next(draw)[0]) == DEFAULT_BATCH_SIZE


def test_a_tensor_or_tuple_of_tensors_is_one_full_batch():
    pair = (torch.ones(3), torch.zeros(3))
    draw = batches(pair, "N")
    assert next(draw) is pair and next(draw) is pair


def test_empty_and_non_iterable_data_are_refused_by_vertex_name():
    with pytest.raises(TypeMismatchError, match="the data of vertex 'N' has no batches"):
        next(batches([], "N"))
    with pytest.raises(TypeMismatchError, match="the data of vertex 'M' is a int, which is not a source of batches"):
        batches(3, "M")


def test_one_shot_iterators_are_refused_by_vertex_name():
    with pytest.raises(TypeMismatchError, match="the data of vertex 'N' is a one-shot iterator"):
        DataSource(iter([1, 2]), "N")


def test_batch_size_is_the_length_of_the_first_tensor_found():
    assert batch_size((["a", "b", "c"], torch.zeros(3, 2))) == 3
    assert batch_size({"x": torch.zeros(5, 1)}) == 5
    assert batch_size(["a", "b"]) == 2 and batch_size(7) == 1
