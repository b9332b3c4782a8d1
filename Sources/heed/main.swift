import HeedTensor
let x = Tensor([1, 2, 3, 4], shape: [2, 2], requiresGrad: true)
let y = (x.matmul(x) * x).sum()
y.backward()
print(x.grad!)
